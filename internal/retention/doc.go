package retention

import (
	"fmt"
	"slices"
	"strings"
)

// Markdown returns rules (see Rules) as a Markdown table: each category
// with its ID (and those of the categories its records carry), whether
// --retention may change it, the rule in words and what its sweep deletes.
// docs/retention.md holds this table for the default inventory, checked
// by a test.
func Markdown(rules []Rule) string {
	own := ruleIDs()
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	var b strings.Builder
	b.WriteString("| Category | ID | Set by `--retention` | Default rule | What the sweep deletes |\n|---|---|---|---|---|\n")
	for _, r := range rules {
		id := "`" + r.Category + "`"
		for _, c := range r.Covers {
			id += ", `" + c + "`"
		}
		key := "no"
		if slices.Contains(own, r.Category) {
			key = "yes"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", cell(r.Name), id, key, cell(r.Rule), cell(r.Note))
	}
	return b.String()
}

// OverrideSyntax returns, in Markdown, the keys and days the --retention
// setting accepts (see ParseOverrides).
func OverrideSyntax() string {
	keys := ruleIDs()
	for i, k := range keys {
		keys[i] = "`" + k + "`"
	}
	return fmt.Sprintf("`--retention CATEGORY=DAYS` is repeatable; a later setting for the same category wins.\n"+
		"CATEGORY is one of %s.\nDAYS is a whole number from 0 to %d; 0 deletes the records at the first sweep after the event.\n",
		strings.Join(keys, ", "), MaxDays)
}
