//! Ranking tools for a query: BM25 over each tool's name, title and description.
//!
//! Names count twice (they are short and say the most), and `snake_case`,
//! `kebab-case` and `camelCase` are split into words so `create_entities`
//! matches "create entities".

use std::collections::HashMap;

use serde_json::Value;

const K1: f64 = 1.2;
const B: f64 = 0.75;

/// Lower-case words of a text, splitting identifiers into their parts.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if c.is_uppercase() && prev_lower && !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
            word.extend(c.to_lowercase());
        } else {
            prev_lower = false;
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// The words a tool is found by.
fn document(tool: &Value) -> Vec<String> {
    let text = |field: &str| tool.get(field).and_then(Value::as_str).unwrap_or_default();
    let mut terms = words(text("name"));
    terms.extend(words(text("name")));
    terms.extend(words(text("title")));
    terms.extend(words(text("description")));
    terms
}

/// The indices of `tools` ranked for `query`, best first, at most `limit`;
/// tools that share no word with the query are left out.
pub fn rank(tools: &[Value], query: &str, limit: usize) -> Vec<usize> {
    let docs: Vec<Vec<String>> = tools.iter().map(document).collect();
    let n = docs.len() as f64;
    if docs.is_empty() {
        return Vec::new();
    }
    let avg_len = docs.iter().map(Vec::len).sum::<usize>() as f64 / n;
    let mut containing: HashMap<&str, usize> = HashMap::new();
    for doc in &docs {
        let mut seen: Vec<&str> = doc.iter().map(String::as_str).collect();
        seen.sort_unstable();
        seen.dedup();
        for term in seen {
            *containing.entry(term).or_default() += 1;
        }
    }
    let mut query_terms = words(query);
    query_terms.sort();
    query_terms.dedup();
    let mut scored: Vec<(f64, usize)> = docs
        .iter()
        .enumerate()
        .map(|(i, doc)| {
            let len = doc.len() as f64;
            let score = query_terms
                .iter()
                .map(|term| {
                    let tf = doc.iter().filter(|t| *t == term).count() as f64;
                    if tf == 0.0 {
                        return 0.0;
                    }
                    let df = containing.get(term.as_str()).copied().unwrap_or(0) as f64;
                    let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                    idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / avg_len.max(1.0)))
                })
                .sum::<f64>();
            (score, i)
        })
        .filter(|(score, _)| *score > 0.0)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(limit).map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn splits_identifiers() {
        assert_eq!(words("create_entities"), ["create", "entities"]);
        assert_eq!(words("get-sum"), ["get", "sum"]);
        assert_eq!(words("readFileContents"), ["read", "file", "contents"]);
        assert_eq!(words("Echoes back the input!"), ["echoes", "back", "the", "input"]);
    }

    #[test]
    fn ranks_by_relevance() {
        let tools = vec![
            json!({"name": "everything__echo", "description": "Echoes back the input string"}),
            json!({"name": "fs__read_text_file", "description": "Read the complete contents of a file as text"}),
            json!({"name": "fs__write_file", "description": "Create a new file or overwrite a file"}),
            json!({"name": "memory__create_entities", "description": "Create multiple new entities in the knowledge graph"}),
        ];
        assert_eq!(rank(&tools, "read a file", 2)[0], 1);
        assert_eq!(rank(&tools, "create entities", 1), vec![3]);
        assert_eq!(rank(&tools, "echo", 3), vec![0]);
        assert!(rank(&tools, "zebra", 3).is_empty());
    }
}
