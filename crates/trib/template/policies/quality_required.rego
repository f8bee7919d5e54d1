# Every product declares quality checks: a product nobody checks cannot be trusted.
package tributary.quality_required

deny contains violation if {
	count(input.quality) == 0
	violation := {
		"msg": sprintf("product `%s` declares no quality checks", [input.product]),
		"path": "product",
		"hint": "add a `quality` list, e.g. `- not_null: [id]`",
	}
}

warn contains violation if {
	input.layer != "bronze"
	count(input.key) > 0
	not has_unique_key
	violation := {
		"msg": sprintf("`%s` has a key but no `unique` check on it", [input.product]),
		"path": "quality",
		"hint": "add `- unique: [key columns]` so duplicates are caught",
	}
}

has_unique_key if {
	some check in input.quality
	check.kind == "unique"
}
