//! A small reader for `.env` files: `KEY=value`, `export KEY=value`, comments, quotes.

/// Parses dotenv text into pairs; a malformed line is reported with its number.
pub(super) fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {}: expected KEY=value", i + 1));
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("line {}: `{key}` is not a variable name", i + 1));
        }
        pairs.push((key.to_string(), unquote(value.trim())));
    }
    Ok(pairs)
}

fn unquote(v: &str) -> String {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    // An unquoted value ends at an inline comment.
    match v.find(" #") {
        Some(i) => v[..i].trim_end().to_string(),
        None => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_quotes_and_export_are_understood() {
        let text = "# c\nA=1\nexport B=\"two words\"\nC='x' \nD=v # note\n\n";
        let pairs = parse(text).expect("valid");
        let want = [("A", "1"), ("B", "two words"), ("C", "x"), ("D", "v")];
        let want: Vec<_> = want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(pairs, want);
    }

    #[test]
    fn a_line_without_equals_is_reported_with_its_number() {
        let err = parse("A=1\noops\n").expect_err("invalid");
        assert!(err.contains("line 2"), "{err}");
    }
}
