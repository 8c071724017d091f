//! Documents with one long top-level list, such as an eval suite's `cases`.
//!
//! The list is cut at its own items (lines that open an item at the list's
//! indentation), the pieces are parsed on several threads by the fast
//! deserializer, and the rest of the document (everything before and after the
//! list) by the normal one. The result is exactly what [`super::from_str`]
//! gives: every piece must parse on its own, so nothing (a quoted string, a
//! flow collection) can span a cut; the pieces together are held to the budget
//! of one document; and whenever anything is off the fast path, including any
//! error, the whole document is parsed the normal way, which also gives the
//! user the usual message with the right line number.

use std::thread;

use serde::de::{DeserializeOwned, IgnoredAny};

use super::fast::{self, Cost};
use super::{budget, from_str, options, utf8};
use crate::FormatError;

/// Below this size the normal parser is fast enough.
const FAST_MIN_BYTES: usize = 64 * 1024;
/// Each thread gets at least this much of the list.
const MIN_PIECE_BYTES: usize = 32 * 1024;
const MAX_THREADS: usize = 8;
const WORKER_STACK: usize = 8 * 1024 * 1024;

/// What [`from_bytes_list`] read: the whole document with the list inside it
/// (the normal path), or the document with an empty list and the list's items
/// already passed through `map` (the fast path).
#[derive(Debug, PartialEq)]
pub enum Listed<T, O> {
    Whole(T),
    Split(T, Vec<O>),
}

/// Parses `bytes` like [`super::from_bytes`], fast when the top-level `key`
/// holds a long block list. On the fast path each item goes through
/// `map(document, index, item)` on the thread that parsed it.
pub fn from_bytes_list<T, I, O>(
    bytes: &[u8],
    key: &str,
    map: impl Fn(&T, usize, I) -> O + Sync,
) -> Result<Listed<T, O>, FormatError>
where
    T: DeserializeOwned + Sync,
    I: DeserializeOwned,
    O: Send,
{
    from_str_list(utf8(bytes)?, key, map)
}

/// As [`from_bytes_list`], for text already known to be UTF-8.
pub fn from_str_list<T, I, O>(
    text: &str,
    key: &str,
    map: impl Fn(&T, usize, I) -> O + Sync,
) -> Result<Listed<T, O>, FormatError>
where
    T: DeserializeOwned + Sync,
    I: DeserializeOwned,
    O: Send,
{
    let tuning = Tuning {
        min_bytes: FAST_MIN_BYTES,
        min_piece_bytes: MIN_PIECE_BYTES,
        threads: thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(MAX_THREADS),
    };
    from_str_list_with(text, key, map, &tuning)
}

/// When the fast path is tried, and how finely the list is cut.
struct Tuning {
    min_bytes: usize,
    min_piece_bytes: usize,
    threads: usize,
}

fn from_str_list_with<T, I, O>(
    text: &str,
    key: &str,
    map: impl Fn(&T, usize, I) -> O + Sync,
    tuning: &Tuning,
) -> Result<Listed<T, O>, FormatError>
where
    T: DeserializeOwned + Sync,
    I: DeserializeOwned,
    O: Send,
{
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.len() >= tuning.min_bytes
        && let Some((doc, items)) = fast_path(text, key, &map, tuning)
    {
        return Ok(Listed::Split(doc, items));
    }
    from_str(text).map(Listed::Whole)
}

/// The document around the list, and the list itself.
#[derive(Debug, PartialEq)]
struct Split<'t> {
    /// Everything before the `key:` line.
    head: &'t str,
    /// The list's items, cut into pieces at item boundaries: the index of the
    /// piece's first item, how many items it holds, and its text.
    pieces: Vec<(usize, usize, &'t str)>,
    /// Everything after the list.
    tail: &'t str,
}

fn fast_path<T, I, O>(
    text: &str,
    key: &str,
    map: &(impl Fn(&T, usize, I) -> O + Sync),
    tuning: &Tuning,
) -> Option<(T, Vec<O>)>
where
    T: DeserializeOwned + Sync,
    I: DeserializeOwned,
    O: Send,
{
    let split = split(text, key, tuning)?;
    // The head must be complete by itself, so that the `key:` line really is
    // a key of the root mapping and not text inside an unclosed string.
    if !split.head.trim().is_empty() {
        serde_saphyr::from_str_with_options::<IgnoredAny>(split.head, options()).ok()?;
    }
    let rest = format!("{}{key}: []\n{}", split.head, split.tail);
    let doc: T = serde_saphyr::from_str_with_options(&rest, options()).ok()?;
    let budget = budget();
    // The list sits one level below the document's root mapping.
    let max_depth = budget.max_depth.checked_sub(1)?;
    let doc_ref = &doc;
    let piece = move |&(first, count, piece): &(usize, usize, &str)| {
        let (mapped, cost) = fast::list(piece, max_depth, count, |i, item: I| {
            map(doc_ref, first + i, item)
        })?;
        // Each item line opens exactly one item; anything else is not the
        // layout this path assumes.
        (mapped.len() == count).then_some((mapped, cost))
    };
    let parsed: Vec<Option<(Vec<O>, Cost)>> = match split.pieces.as_slice() {
        [only] => vec![piece(only)],
        [first, others @ ..] => thread::scope(|scope| {
            // Workers get the main thread's stack size; if the system will
            // not start one, that piece is parsed here.
            let handles: Vec<_> = others
                .iter()
                .map(|p| {
                    thread::Builder::new()
                        .stack_size(WORKER_STACK)
                        .spawn_scoped(scope, move || piece(p))
                        .map_err(|_| p)
                })
                .collect();
            let mut out = vec![piece(first)];
            for h in handles {
                out.push(match h {
                    Ok(h) => match h.join() {
                        Ok(r) => r,
                        Err(panic) => std::panic::resume_unwind(panic),
                    },
                    Err(p) => piece(p),
                });
            }
            out
        }),
        [] => return None,
    };
    // What the rest of the document costs, counted on the same events the
    // normal parser budgets (aliases there could replay far more than its
    // length, so they send the file the normal way).
    let mut total = fast::plain_cost(&rest)?;
    let mut items = Vec::with_capacity(parsed.iter().flatten().map(|p| p.0.len()).sum());
    for part in parsed {
        let (part_items, cost) = part?;
        total.nodes += cost.nodes;
        total.events += cost.events;
        total.scalar_bytes += cost.scalar_bytes;
        items.extend(part_items);
    }
    if total.nodes > budget.max_nodes
        || total.events > budget.max_events
        || total.scalar_bytes > budget.max_total_scalar_bytes
    {
        return None;
    }
    Some((doc, items))
}

/// Finds the root-level `key:` line whose value is a block list, and cuts the
/// list at item lines into at most `tuning.threads` pieces of similar size. `None`
/// when the document is not laid out that way.
fn split<'t>(text: &'t str, key: &str, tuning: &Tuning) -> Option<Split<'t>> {
    let mut lines = text.split_inclusive('\n').scan(0usize, |offset, line| {
        let at = *offset;
        *offset += line.len();
        Some((
            at,
            line.strip_suffix('\n')
                .unwrap_or(line)
                .trim_end_matches('\r'),
        ))
    });
    let head_end = lines.by_ref().find_map(|(at, line)| {
        // `key:` then nothing, or blanks and maybe a comment (`key:#` is a
        // plain scalar, not a key).
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
            return None;
        }
        let rest = rest.trim_start_matches([' ', '\t']);
        (rest.is_empty() || rest.starts_with('#')).then_some(at)
    })?;
    let mut indent = None;
    let mut starts = Vec::new();
    let mut tail_start = text.len();
    for (at, line) in lines {
        let content = line.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if line.starts_with("---") || line.starts_with("...") || line.starts_with('%') {
            return None;
        }
        let column = line.len() - content.len();
        let is_item = content
            .strip_prefix('-')
            .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t']));
        match indent {
            // The first line after `key:` must open the list's first item.
            None if is_item => {
                indent = Some(column);
                starts.push(at);
            }
            None => return None,
            Some(c) if column == c && is_item => starts.push(at),
            Some(c) if column < c || (column == c && !is_item) => {
                tail_start = at;
                break;
            }
            Some(_) => {}
        }
    }
    let first = *starts.first()?;
    let tail = &text[tail_start..];
    if tail
        .lines()
        .any(|l| l.starts_with("---") || l.starts_with("...") || l.starts_with('%'))
    {
        return None;
    }
    let list_len = tail_start - first;
    let wanted = tuning
        .threads
        .clamp(1, (list_len / tuning.min_piece_bytes.max(1)).max(1));
    let mut cuts = vec![first];
    for k in 1..wanted {
        let target = first + list_len * k / wanted;
        let at = starts.partition_point(|&s| s < target);
        if let Some(&cut) = starts.get(at)
            && cuts.last().is_some_and(|&last| cut > last)
        {
            cuts.push(cut);
        }
    }
    cuts.push(tail_start);
    let pieces = cuts
        .windows(2)
        .map(|w| {
            let first = starts.partition_point(|&s| s < w[0]);
            let end = starts.partition_point(|&s| s < w[1]);
            (first, end - first, &text[w[0]..w[1]])
        })
        .collect();
    Some(Split {
        head: &text[..head_end],
        pieces,
        tail,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Deserialize;
    use serde_json::{Map, Value};

    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        id: String,
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        vars: Option<Map<String, Value>>,
        #[serde(default)]
        cases: Vec<Item>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        id: String,
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        input: Option<Map<String, Value>>,
        #[serde(default)]
        expected_output: Option<String>,
        #[serde(default)]
        tags: Option<Vec<String>>,
        #[serde(default)]
        assertions: Option<Vec<Check>>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Check {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        config: Option<Map<String, Value>>,
        #[serde(default)]
        weight: Option<f64>,
    }

    /// Always the fast path first, cut as finely as `threads` allows.
    fn eager(threads: usize) -> Tuning {
        Tuning {
            min_bytes: 0,
            min_piece_bytes: 1,
            threads,
        }
    }

    /// The document as the split path reads it, with the list put back.
    /// Items come back with the index `map` saw, which must be their position.
    fn typed_split(text: &str, threads: usize) -> Result<Doc, FormatError> {
        let listed = from_str_list_with(
            text,
            "cases",
            |_: &Doc, i, item: Item| (i, item),
            &eager(threads),
        )?;
        Ok(match listed {
            Listed::Whole(doc) => doc,
            Listed::Split(mut doc, items) => {
                for (at, (i, _)) in items.iter().enumerate() {
                    assert_eq!(at, *i, "map saw the wrong index");
                }
                doc.cases = items.into_iter().map(|(_, item)| item).collect();
                doc
            }
        })
    }

    fn untyped_split(text: &str, threads: usize) -> Result<Map<String, Value>, FormatError> {
        let listed = from_str_list_with(
            text,
            "cases",
            |_: &Map<String, Value>, _, item: Value| item,
            &eager(threads),
        )?;
        Ok(match listed {
            Listed::Whole(doc) => doc,
            Listed::Split(mut doc, items) => {
                doc.insert("cases".into(), Value::Array(items));
                doc
            }
        })
    }

    /// The split parse and the whole-document parse agree, typed and untyped,
    /// on the value or on the error.
    fn agree(text: &str) {
        for threads in [1, 2, 3, 7] {
            assert_eq!(
                typed_split(text, threads),
                from_str::<Doc>(text),
                "typed, {threads} threads:\n{text}"
            );
            let untyped = untyped_split(text, threads);
            let whole = from_str::<Map<String, Value>>(text);
            // A list-less document gains an empty `cases` on the split path
            // only if it took the fast path, which needs the key; compare as is.
            assert_eq!(untyped, whole, "untyped, {threads} threads:\n{text}");
        }
    }

    fn fast_taken(text: &str) -> bool {
        fast_path(text, "cases", &|_: &Doc, _, item: Item| item, &eager(3)).is_some()
    }

    const PLAIN: &str = "id: s
description: a suite
cases:
- id: a
  input: {name: Ann, n: 3, ratio: 0.25, neg: -4, ok: true, none: null}
  expected_output: Hello Ann
  tags: [x, y]
  assertions:
  - type: contains
    config: {expected: Hello}
    weight: 2
- id: b
  description: |
    line one
    - id: not_an_item
  assertions:
  - type: regex
    config:
      pattern: 'b\\d+'
# a comment at column 0
- id: c
  input:
    nested: {deep: [1, 2, {three: 3}]}
vars: {greeting: hi}
";

    #[test]
    fn plain_documents_take_the_fast_path_and_agree() {
        assert!(fast_taken(PLAIN));
        agree(PLAIN);
        let indented = PLAIN
            .lines()
            .map(|l| {
                if l.starts_with("- ") || l.starts_with("  ") || l.starts_with("# a") {
                    format!("  {l}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(fast_taken(&indented), "{indented}");
        agree(&indented);
        let crlf = PLAIN.replace('\n', "\r\n");
        assert!(fast_taken(&crlf));
        agree(&crlf);
        let list_first = "cases:\n- id: a\n- id: b\nid: s\n";
        assert!(fast_taken(list_first));
        agree(list_first);
    }

    #[test]
    fn the_list_is_cut_at_its_own_items_only() {
        let s = split(PLAIN, "cases", &eager(3)).expect("splits");
        assert!(s.head.ends_with("description: a suite\n"));
        assert_eq!(s.tail, "vars: {greeting: hi}\n");
        assert_eq!(s.pieces.len(), 3);
        assert!(s.pieces.iter().all(|p| p.2.starts_with("- id: ")));
        assert_eq!(
            s.pieces.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>(),
            [(0, 1), (1, 1), (2, 1)]
        );
        assert!(split("id: s\ncases: []\n", "cases", &eager(2)).is_none());
        assert!(split("id: s\ncases:\n  x: 1\n", "cases", &eager(2)).is_none());
        assert!(split("id: s\n", "cases", &eager(2)).is_none());
    }

    #[test]
    fn whatever_the_fast_path_cannot_vouch_for_goes_the_normal_way() {
        let tricky = [
            // Typed-looking scalars: the normal parser decides.
            "id: s\ncases:\n- id: a\n  input: {v: 0x1F, w: .inf, d: 2026-01-01, o: 007, e: 1e3}\n",
            "id: s\ncases:\n- id: 12\n",
            "id: s\ncases:\n- id: yes\n  expected_output: 1.10\n",
            "id: s\ncases:\n- id: a\n  tags: [1, true]\n",
            // Anchors, aliases, tags, merge keys.
            "id: s\ncases:\n- &x {id: a}\n- *x\n",
            "id: s\nbase: &b {type: contains}\ncases:\n- id: a\n  assertions: [*b]\n",
            "id: s\ncases:\n- id: !!str a\n",
            "id: s\ncases:\n- id: a\n  input: {<<: {k: v}}\n",
            // Duplicates, in an item, in the root, and of the list itself.
            "id: s\ncases:\n- id: a\n  id: b\n",
            "id: s\ncases:\n- id: a\ncases:\n- id: b\n",
            "id: s\n\"cases\": []\ncases:\n- id: a\n",
            "id: s\nid: t\ncases:\n- id: a\n",
            // A quoted string that runs across what looks like list lines.
            "id: s\ndescription: \"open\ncases:\n- id: a\n\"\n",
            "id: s\ncases:\n- id: a\n  description: \"open\n- id: b\n  \"\n",
            "id: s\ncases:\n- id: a\n  input: {k: [1,\n- id: b\n  ]}\n",
            // Numbers as field names, structs from sequences.
            "id: s\ncases:\n- 0: a\n",
            "id: s\ncases:\n- [a, b]\n",
            // Documents, directives, unknown fields, wrong shapes, bad syntax.
            "id: s\ncases:\n- id: a\n---\nid: t\n",
            "%YAML 1.2\n---\nid: s\ncases:\n- id: a\n",
            "---\nid: s\ncases:\n- id: a\n",
            "id: s\ncases:\n- id: a\n  surprise: 1\n",
            "id: s\ncases:\n- id: a\n  tags: x\n",
            "id: s\ncases:\n- id: a\n  input: [1]\n",
            "id: s\ncases:\n- id: a\n  input: {k: v\n",
            "id: s\ncases:\n- id: a\n\t- id: b\n",
            "id: s\ncases:\n  - id: a\n  x: 1\n",
            "id: s\ncases:\n- id: a\n  description: |+\n    keep\n\n\n- id: b\n",
            "id: s\ncases:\n- id: a\n  weight: 1\n",
            "id: s\ncases:\n-\n- id: b\n",
            "id: s\ncases:\n- id: ~\n",
            "id: s\ncases:\n- id: a\n  description:\n  expected_output: ''\n",
            "# only a comment\ncases:\n- id: a\nid: s\n",
            // `cases:#` is a plain scalar, not the key.
            "id: s\ncases:#\n- id: a\n",
            "cases:#\n- id: a\n",
            "id: s\ncases:\t# tab, then a comment\n- id: a\n",
            // Anchors, aliases and tags around the list, not in it.
            "id: &i s\nvars: {k: *i}\ncases:\n- id: a\n",
            "id: !!str s\ncases:\n- id: a\ndescription: !!str d\n",
        ];
        for t in tricky {
            agree(t);
        }
    }

    #[test]
    fn deep_nesting_is_held_to_the_whole_document_budget() {
        // Either side of the limit, wherever it falls.
        for depth in 40..52 {
            let open = "[".repeat(depth);
            let close = "]".repeat(depth);
            agree(&format!(
                "id: s\ncases:\n- id: a\n  input: {{k: {open}{close}}}\n"
            ));
        }
    }

    /// Scalars the fast path resolves itself, and (less often) ones it hands
    /// to the normal parser.
    fn scalar() -> impl Strategy<Value = String> {
        let settled = prop::sample::select(vec![
            "plain",
            "two words",
            "12",
            "-12",
            "0.5",
            "true",
            "False",
            "null",
            "~",
            "'single'",
            "\"dq \\u00e9\"",
            "'it''s'",
            "\"a\\nb\"",
            "é-accent",
            "_under",
            "'- id: x'",
            "Null",
        ]);
        let tricky = prop::sample::select(vec![
            "yes",
            "No",
            "",
            "1.10",
            "007",
            "0x1F",
            "-0",
            "1e3",
            ".inf",
            "2026-01-01",
            "a: b",
            "#notcomment",
            "+1",
            "with # hash",
            "&anchor x",
            "!!str tagged",
        ]);
        prop_oneof![60 => settled, 1 => tricky].prop_map(str::to_string)
    }

    /// For fields typed as strings, and (less often) what a string field refuses.
    fn string_scalar() -> impl Strategy<Value = String> {
        let settled = prop::sample::select(vec![
            "plain",
            "two words",
            "'single'",
            "\"dq\"",
            "'it''s'",
            "é-accent",
            "_under",
            "'- id: x'",
            "'12'",
            "|\n      - id: inner",
            "\"spans\n      lines\"",
        ]);
        let tricky = prop::sample::select(vec!["12", "yes", "null", "1.10", "true", "[a]"]);
        prop_oneof![60 => settled, 1 => tricky].prop_map(str::to_string)
    }

    fn number() -> impl Strategy<Value = String> {
        let settled = prop::sample::select(vec!["1", "0.5", "2", "3.25", "0"]);
        let tricky = prop::sample::select(vec!["1e3", ".inf", "yes", "-0", "1_000", "'2'"]);
        prop_oneof![60 => settled, 1 => tricky].prop_map(str::to_string)
    }

    fn value_text() -> impl Strategy<Value = String> {
        prop_oneof![
            scalar(),
            prop::collection::vec(scalar(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            (scalar(), scalar()).prop_map(|(a, b)| format!("{{k: {a}, j: {b}}}")),
            Just("|\n      - id: inner\n      text".to_string()),
            Just(">-\n      folded\n      - id: inner".to_string()),
            Just("\"spans\n      lines\"".to_string()),
        ]
    }

    fn item() -> impl Strategy<Value = String> {
        (
            prop_oneof![
                40 => prop::sample::select(vec!["a", "b", "c", "x1", "'q'", "\"d q\""]),
                1 => prop::sample::select(vec!["12", "yes", "", "a", "a"]),
            ],
            prop::option::of(string_scalar()),
            prop::option::of((value_text(), value_text())),
            prop::option::of(prop::collection::vec(string_scalar(), 0..3)),
            prop::option::of((scalar(), prop::option::of(number()))),
            any::<bool>(),
        )
            .prop_map(|(id, desc, input, tags, check, comment)| {
                let mut s = format!("- id: {id}\n");
                if let Some(d) = desc {
                    s.push_str(&format!("  description: {d}\n"));
                }
                if let Some((a, b)) = input {
                    s.push_str(&format!("  input:\n    first: {a}\n    second: {b}\n"));
                }
                if let Some(t) = tags {
                    s.push_str(&format!(
                        "  tags:\n{}",
                        t.iter().map(|t| format!("  - {t}\n")).collect::<String>()
                    ));
                }
                if let Some((expected, weight)) = check {
                    s.push_str(&format!(
                        "  assertions:\n  - type: contains\n    config: {{expected: {expected}}}\n"
                    ));
                    if let Some(w) = weight {
                        s.push_str(&format!("    weight: {w}\n"));
                    }
                }
                if comment {
                    s.push_str("# between items\n\n");
                }
                s
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn split_parsing_agrees_with_whole_document_parsing(
            items in prop::collection::vec(item(), 1..12),
            indent in prop::sample::select(vec![0usize, 2]),
            vars_after in any::<bool>(),
            desc in string_scalar(),
        ) {
            let mut text = format!("id: s\ndescription: {desc}\ncases:\n");
            for it in &items {
                for line in it.lines() {
                    if line.is_empty() {
                        text.push('\n');
                    } else {
                        text.push_str(&" ".repeat(indent));
                        text.push_str(line);
                        text.push('\n');
                    }
                }
            }
            if vars_after {
                text.push_str("vars: {k: v}\n");
            }
            agree(&text);
        }
    }
}
