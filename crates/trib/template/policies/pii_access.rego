# PII columns require access controls: a product holding PII must say who may read it.
package tributary.pii_access

deny contains violation if {
	some column in input.schema
	column.pii
	count(input.access) == 0
	violation := {
		"msg": sprintf("column `%s` of `%s` holds PII but the product grants no access roles", [column.name, input.product]),
		"path": sprintf("schema.%s", [column.name]),
		"hint": "add an `access` list naming the roles that may read this product",
	}
}

deny contains violation if {
	some column in input.schema
	column.pii
	column.classification == null
	violation := {
		"msg": sprintf("PII column `%s` of `%s` has no classification", [column.name, input.product]),
		"path": sprintf("schema.%s", [column.name]),
		"hint": "add `classification: confidential` (or restricted) to the column",
	}
}
