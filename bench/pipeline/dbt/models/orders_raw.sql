-- Bronze: the new file's rows appended as they are, typed by the contract's schema
-- (orders.orders_raw). `_batch` numbers the file so that silver reads only what is new.
-- The files carry UTC timestamps ('Z'), kept as TIMESTAMP.
{{ config(materialized='incremental', incremental_strategy='append') }}

select
    order_id,
    customer_id,
    customer_email,
    country,
    status,
    amount,
    currency,
    ordered_at,
    updated_at,
    {{ var('batch') }}::integer as _batch
from read_json(
    '{{ var("file") }}',
    format = 'newline_delimited',
    columns = {
        order_id: 'VARCHAR',
        customer_id: 'VARCHAR',
        customer_email: 'VARCHAR',
        country: 'VARCHAR',
        status: 'VARCHAR',
        amount: 'DECIMAL(12,2)',
        currency: 'VARCHAR',
        ordered_at: 'TIMESTAMP',
        updated_at: 'TIMESTAMP'
    }
)
