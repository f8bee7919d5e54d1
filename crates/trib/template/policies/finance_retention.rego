# Products of a finance domain, or tagged `finance`, keep their data at least 7 years.
package tributary.finance_retention

seven_years := (7 * 365) * 86400

is_finance if input.domain in {"finance", "payments"}

is_finance if "finance" in input.tags

deny contains violation if {
	is_finance
	input.retention == null
	violation := {
		"msg": sprintf("finance product `%s` declares no retention; finance products keep 7 years", [input.product]),
		"path": "product",
		"hint": "add `retention: 7y`",
	}
}

deny contains violation if {
	is_finance
	input.retention.seconds < seven_years
	violation := {
		"msg": sprintf("finance product `%s` keeps data for %s; finance products keep at least 7 years", [input.product, input.retention.text]),
		"path": "retention",
		"hint": "set `retention: 7y` or longer",
	}
}
