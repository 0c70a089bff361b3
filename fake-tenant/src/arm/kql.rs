//! Just enough KQL reading to find which tables a log alert query reads, so a rule on a table
//! the workspace does not have fails the way Azure Monitor's query validation does.
//!
//! Handles the shapes alert queries take in practice: `Table | ...`, leading `let` statements,
//! `union A, B`, `table('A')`, `//` comments. Anything that does not start with a table
//! (`print`, `datatable`, `range`, ...) references none.

/// A table the query reads, and the operator that first consumes it (Kusto names that
/// operator in its "Failed to resolve" message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReference {
    pub table: String,
    pub operator: Option<String>,
}

/// Keywords that start a tabular expression without reading a table.
const NON_TABLE_SOURCES: &[&str] = &[
    "print",
    "datatable",
    "range",
    "search",
    "find",
    "evaluate",
    "externaldata",
    "materialize",
];

pub fn referenced_tables(query: &str) -> Vec<TableReference> {
    let without_comments: String = query
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut locals: Vec<String> = Vec::new();
    let mut references = Vec::new();
    for statement in without_comments.split(';') {
        let statement = statement.trim();
        if statement.is_empty() {
            continue;
        }
        if let Some(rest) = strip_keyword(statement, "let") {
            let (name, value) = rest.split_once('=').unwrap_or((rest, ""));
            locals.push(name.trim().to_owned());
            // `let x = Table | ...` reads a table too; scalar lets read none.
            references.extend(source_tables(value.trim(), &locals));
            continue;
        }
        references.extend(source_tables(statement, &locals));
    }
    references
}

fn source_tables(expression: &str, locals: &[String]) -> Vec<TableReference> {
    let expression = expression.trim_start_matches('(').trim();
    let (source, rest) = expression.split_once('|').unwrap_or((expression, ""));
    let operator = rest
        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'))
        .find(|w| !w.is_empty())
        .map(str::to_owned);
    let source = source.trim();
    let names: Vec<String> = if let Some(list) = strip_keyword(source, "union") {
        list.split(',')
            .map(str::trim)
            // `union withsource=T kind=outer A, B`: options come before the first table.
            .map(|t| t.rsplit(' ').next().unwrap_or_default().to_owned())
            .collect()
    } else if let Some(inner) = source.strip_prefix("table(") {
        vec![inner
            .trim_end_matches(')')
            .trim_matches(|c| c == '\'' || c == '"')
            .to_owned()]
    } else {
        let first: String = source
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // `name(...)` is a function call (`dynamic(...)`, `ago(1h)`), not a table.
        let is_call = source[first.len()..].trim_start().starts_with('(');
        if is_call {
            Vec::new()
        } else {
            vec![first]
        }
    };
    names
        .into_iter()
        .filter(|n| {
            !n.is_empty()
                && n.chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
                && !NON_TABLE_SOURCES.contains(&n.as_str())
                && !locals.iter().any(|l| l == n)
        })
        .map(|table| TableReference {
            table,
            operator: operator.clone(),
        })
        .collect()
}

fn strip_keyword<'a>(text: &'a str, keyword: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(keyword)?;
    rest.starts_with(char::is_whitespace)
        .then(|| rest.trim_start())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(q: &str) -> Vec<String> {
        referenced_tables(q).into_iter().map(|r| r.table).collect()
    }

    #[test]
    fn finds_the_leading_table_and_its_operator() {
        let refs = referenced_tables("SigninLogs\n| where UserPrincipalName == 'bg@contoso.com'");
        assert_eq!(
            refs,
            vec![TableReference {
                table: "SigninLogs".into(),
                operator: Some("where".into())
            }]
        );
    }

    #[test]
    fn skips_comments_lets_and_local_names() {
        let q = "// break-glass sign-ins\nlet upns = dynamic(['a@b']);\nlet recent = SigninLogs | where TimeGenerated > ago(5m);\nrecent | summarize count()";
        assert_eq!(tables(q), vec!["SigninLogs"]);
    }

    #[test]
    fn reads_union_and_table_function() {
        assert_eq!(
            tables("union SigninLogs, AADNonInteractiveUserSignInLogs | where true"),
            vec!["SigninLogs", "AADNonInteractiveUserSignInLogs"]
        );
        assert_eq!(tables("table('AuditLogs') | take 1"), vec!["AuditLogs"]);
        assert!(tables("print 1").is_empty());
    }
}
