SELECT id, name, description, weight, _lsn AS lsn, _op FROM inventory.products_raw
