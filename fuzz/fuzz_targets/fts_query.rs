//! Chinese full-text helpers of `switchd::store::text` on arbitrary UTF-8 (invalid UTF-8 is
//! skipped): the search query a desktop sends and the ticket / article text it is matched to.
//!
//! Input layout: the first byte is the query's length in bytes (moved forward to the next char
//! boundary, clamped to the rest); the rest is split there into `query` and `body`.
//!
//! * `match_expr(query, &["title_", "body_"])`, `index_forms(query)`, `index_forms(body)` and
//!   `snippet(body, query, 60)` never panic.
//! * `match_expr` is `None` exactly when the query has nothing indexable (its bigram form is
//!   empty), and the user's text can never break out of an FTS5 phrase: the expression holds
//!   exactly two `"` per term.
//! * `snippet` returns at most 60 characters plus two ellipses, and when the query's first term
//!   (up to 40 characters) occurs in the body, the snippet contains it.
//!
//! Set `REXIAN_FUZZ_DEBUG=1` to print the outputs (useful for checking seeds).

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchd::store::text::{index_forms, match_expr, snippet};

const WIDTH: usize = 60;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let mut split = usize::from(split).min(text.len());
    while !text.is_char_boundary(split) {
        split += 1;
    }
    let (query, body) = text.split_at(split);

    let expr = match_expr(query, &["title_", "body_"]);
    let (query_bi, query_uni) = index_forms(query);
    let (body_bi, body_uni) = index_forms(body);
    let snip = snippet(body, query, WIDTH);
    if std::env::var_os("REXIAN_FUZZ_DEBUG").is_some() {
        eprintln!(
            "fts_query: query {query:?} body {body:?}\n  expr {expr:?}\n  query forms {query_bi:?} / {query_uni:?}\n  \
             body forms {body_bi:?} / {body_uni:?}\n  snippet {snip:?}"
        );
    }

    assert_eq!(expr.is_none(), query_bi.is_empty(), "match_expr {expr:?} for bigram form {query_bi:?}");
    assert_eq!(query_bi.is_empty(), query_uni.is_empty());
    assert_eq!(body_bi.is_empty(), body_uni.is_empty());
    if let Some(expr) = &expr {
        let terms = expr.matches(" AND ").count() + 1;
        assert_eq!(expr.matches('"').count(), 2 * terms, "quotes in {expr:?}");
        assert!(match_expr(query, &[""]).is_some());
    }

    let body_chars: Vec<char> = body.chars().collect();
    assert!(snip.chars().count() <= WIDTH + 2, "snippet {snip:?} too long");
    // The first term the snippet centres on: the first run of CJK or alphanumeric characters.
    let first_term: Vec<char> = first_run(query);
    if !first_term.is_empty()
        && first_term.len() <= 40
        && body_chars.windows(first_term.len()).any(|w| w == first_term.as_slice())
    {
        let term: String = first_term.iter().collect();
        assert!(snip.contains(&term), "snippet {snip:?} misses {term:?}");
    }
});

/// Mirrors `runs()` in text.rs: the first maximal run of characters of one class (CJK, or other
/// alphanumeric), where anything else separates runs.
fn first_run(query: &str) -> Vec<char> {
    fn class(c: char) -> Option<bool> {
        let cjk = matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F);
        if cjk {
            Some(true)
        } else if c.is_alphanumeric() {
            Some(false)
        } else {
            None
        }
    }
    let mut out = Vec::new();
    let mut kind = None;
    for c in query.chars() {
        match (class(c), kind) {
            (Some(k), None) => {
                kind = Some(k);
                out.push(c);
            }
            (Some(k), Some(cur)) if k == cur => out.push(c),
            _ if kind.is_some() => break,
            _ => {}
        }
    }
    out
}
