//! The module graph of `src/` points one way: a CI check that fails when a
//! `crate::` path makes a cycle between top-level modules (`config`,
//! `backend`, `router`, …), so the floors a newcomer reads stay floors.
//!
//! Cycles that predate the check are listed in [`KNOWN_CYCLES`] until the
//! architecture work (issue 16) removes them: a new cycle fails, and so does
//! a listed one that is gone (strike it from the list, so it cannot return).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each a set of top-level modules that import one another, sorted by name.
const KNOWN_CYCLES: &[&[&str]] = &[];

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a source text names through `crate::` paths,
/// grouped imports (`use crate::{a, b::c}`) included.
fn crate_references(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| s.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level commas only: `{a::{b, c}, d}` names a and d.
            let (mut depth, mut start) = (0usize, 0usize);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        names.insert(ident(&group[start..i]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        names.insert(ident(&group[start..i]));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            names.insert(ident(rest));
        }
    }
    names
}

/// Top-level module → the top-level modules it uses.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let module_of = |path: &Path| -> Option<String> {
        let relative = path.strip_prefix(src).ok()?;
        let first = relative.components().next()?.as_os_str().to_str()?;
        match first {
            "lib.rs" | "bin" => None,
            name => Some(name.trim_end_matches(".rs").to_string()),
        }
    };
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for file in &files {
        let Some(module) = module_of(file) else { continue };
        let text = std::fs::read_to_string(file).expect("read source");
        for used in crate_references(&text) {
            if used != module && modules.contains(&used) {
                graph.get_mut(&module).expect("module").insert(used);
            }
        }
    }
    graph
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: BTreeSet<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, node: &'a str) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            for next in &self.graph[node] {
                if !self.index.contains_key(next.as_str()) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next.as_str()]);
                    self.low.insert(node, low);
                } else if self.stack.contains(&next.as_str()) {
                    let low = self.low[node].min(self.index[next.as_str()]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(top) = self.stack.pop() {
                    component.push(top.to_string());
                    if top == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.insert(component);
                }
            }
        }
    }
    let mut walk =
        Walk { graph, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), found: BTreeSet::new() };
    for node in graph.keys() {
        if !walk.index.contains_key(node.as_str()) {
            walk.visit(node);
        }
    }
    walk.found
}

#[test]
fn top_level_modules_import_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    let found = cycles(&graph);
    let known: BTreeSet<Vec<String>> = KNOWN_CYCLES.iter().map(|c| c.iter().map(|m| m.to_string()).collect()).collect();
    let edges = |cycle: &Vec<String>| {
        cycle
            .iter()
            .flat_map(|m| graph[m].iter().filter(|u| cycle.contains(u)).map(move |u| format!("{m} → {u}")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let new: Vec<String> = found.difference(&known).map(|c| format!("{c:?} ({})", edges(c))).collect();
    assert!(new.is_empty(), "import cycles between top-level modules of src/: {new:#?}");
    let gone: Vec<&Vec<String>> = known.difference(&found).collect();
    assert!(gone.is_empty(), "cycles listed in KNOWN_CYCLES are gone; strike them from the list: {gone:?}");
}

#[test]
fn grouped_and_nested_imports_are_read() {
    let text = "use crate::{config::{A, B}, backend};\nlet x = crate::gateway::Gateway::new();";
    let names: Vec<String> = crate_references(text).into_iter().collect();
    assert_eq!(names, ["backend", "config", "router"]);
}

#[test]
fn a_cycle_is_found_and_a_chain_is_not() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert!(cycles(&graph(&[("a", "b"), ("b", "c")])).is_empty());
    let found = cycles(&graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]));
    assert_eq!(found.into_iter().collect::<Vec<_>>(), vec![vec!["a".to_string(), "b".into(), "c".into()]]);
}
