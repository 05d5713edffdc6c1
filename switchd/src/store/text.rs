//! Chinese full-text indexing on SQLite FTS5 without a dictionary: CJK runs are indexed as
//! overlapping bigrams (and, in a second column, single characters), as Lucene's CJKAnalyzer
//! does; Latin words and numbers as lower-cased words. A query of several characters becomes a
//! phrase of consecutive bigrams, so 特种设备 matches inside 特种设备安全监察条例 and never
//! matches 特种 … 设备 scattered apart; a one-character query searches the single characters.
//! Ranking is FTS5's BM25. See docs/decisions/0002-chinese-search-fts5-bigrams.md.

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// Splits text into runs: (is_cjk, chars). Everything not CJK or alphanumeric separates runs.
fn runs(text: &str) -> Vec<(bool, Vec<char>)> {
    let mut out: Vec<(bool, Vec<char>)> = Vec::new();
    for c in text.chars() {
        let class = if is_cjk(c) {
            Some(true)
        } else if c.is_alphanumeric() {
            Some(false)
        } else {
            None
        };
        match (class, out.last_mut()) {
            (Some(k), Some((last_k, chars))) if *last_k == k && !chars.is_empty() => chars.push(c),
            (Some(k), _) => out.push((k, vec![c])),
            (None, Some((_, chars))) if !chars.is_empty() => out.push((false, Vec::new())),
            (None, _) => {}
        }
    }
    out.retain(|(_, chars)| !chars.is_empty());
    out
}

fn latin_word(chars: &[char]) -> String {
    chars.iter().flat_map(|c| c.to_lowercase()).collect()
}

fn bigrams(chars: &[char]) -> Vec<String> {
    if chars.len() == 1 {
        return vec![chars[0].to_string()];
    }
    chars.windows(2).map(|w| w.iter().collect()).collect()
}

/// The two indexed forms of a text: (bigram column, single-character column).
pub fn index_forms(text: &str) -> (String, String) {
    let mut bi = Vec::new();
    let mut uni = Vec::new();
    for (cjk, chars) in runs(text) {
        if cjk {
            bi.extend(bigrams(&chars));
            uni.extend(chars.iter().map(|c| c.to_string()));
        } else {
            let w = latin_word(&chars);
            bi.push(w.clone());
            uni.push(w);
        }
    }
    (bi.join(" "), uni.join(" "))
}

/// An FTS5 MATCH expression for a user's query over columns named `{prefix}bi` / `{prefix}uni`
/// (with `cols` listing the column-name stems, e.g. ["title_", "body_"] or [""]); `None` when
/// the query has nothing searchable.
pub fn match_expr(query: &str, stems: &[&str]) -> Option<String> {
    let terms: Vec<String> = runs(query)
        .into_iter()
        .map(|(cjk, chars)| {
            let (suffix, phrase) = match (cjk, chars.len()) {
                (true, 1) => ("uni", chars[0].to_string()),
                (true, _) => ("bi", bigrams(&chars).join(" ")),
                (false, _) => ("bi", latin_word(&chars)),
            };
            let cols: Vec<String> = stems.iter().map(|s| format!("{s}{suffix}")).collect();
            format!("{{{}}} : \"{}\"", cols.join(" "), phrase)
        })
        .collect();
    (!terms.is_empty()).then(|| terms.join(" AND "))
}

/// At most this many distinct terms in an [`any_expr`]: a pasted page must not become a huge query.
const MAX_ANY_TERMS: usize = 48;

/// An FTS5 MATCH expression for "more like this": any of the query's bigrams (and Latin words)
/// over the `{stem}bi` columns, so BM25 ranks first the texts sharing the most and the rarest
/// bigrams with what the agent is typing. Single characters are left out (too common to
/// suggest anything). `None` when nothing is left.
pub fn any_expr(query: &str, stems: &[&str]) -> Option<String> {
    let mut terms: Vec<String> = Vec::new();
    for (cjk, chars) in runs(query) {
        let words = match (cjk, chars.len()) {
            (true, 1) => continue,
            (true, _) => bigrams(&chars),
            (false, _) => vec![latin_word(&chars)],
        };
        for w in words {
            if terms.len() < MAX_ANY_TERMS && !terms.contains(&w) {
                terms.push(w);
            }
        }
    }
    let cols: Vec<String> = stems.iter().map(|s| format!("{s}bi")).collect();
    let cols = cols.join(" ");
    (!terms.is_empty()).then(|| terms.iter().map(|t| format!("{{{cols}}} : \"{t}\"")).collect::<Vec<_>>().join(" OR "))
}

/// A short excerpt of `body` around the first place a query term occurs.
pub fn snippet(body: &str, query: &str, width: usize) -> String {
    let chars: Vec<char> = body.chars().collect();
    // The first query run found in the body, else the first of its bigrams found (suggestions
    // match any bigram, not the whole run).
    let runs = runs(query);
    let bigram_terms = runs.iter().filter(|(_, c)| c.len() > 1).flat_map(|(_, c)| c.windows(2).map(<[char]>::to_vec));
    let pos = runs
        .iter()
        .map(|(_, c)| c.clone())
        .take(1)
        .chain(bigram_terms)
        .find_map(|term| chars.windows(term.len()).position(|w| w == term.as_slice()))
        .unwrap_or(0);
    let start = pos.saturating_sub(width / 3);
    let end = (start + width).min(chars.len());
    let mut s: String = chars[start..end].iter().collect();
    if start > 0 {
        s.insert(0, '…');
    }
    if end < chars.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cjk_runs_become_bigrams_and_characters() {
        let (bi, uni) = index_forms("特种设备 ISO9001认证");
        assert_eq!(bi, "特种 种设 设备 iso9001 认证");
        assert_eq!(uni, "特 种 设 备 iso9001 认 证");
    }

    #[test]
    fn query_is_a_phrase_of_bigrams() {
        assert_eq!(match_expr("特种设备", &[""]).as_deref(), Some("{bi} : \"特种 种设 设备\""));
        assert_eq!(match_expr("秤", &["title_", "body_"]).as_deref(), Some("{title_uni body_uni} : \"秤\""));
        assert_eq!(match_expr("  ，。 ", &[""]), None);
        // Quotes and FTS operators in the query are separators, never syntax.
        assert_eq!(match_expr("a\" OR b", &[""]).as_deref(), Some("{bi} : \"a\" AND {bi} : \"or\" AND {bi} : \"b\""));
    }

    #[test]
    fn any_expr_ors_distinct_bigrams_and_skips_single_characters() {
        assert_eq!(
            any_expr("电梯停运，电梯 B座", &[""]).as_deref(),
            Some("{bi} : \"电梯\" OR {bi} : \"梯停\" OR {bi} : \"停运\" OR {bi} : \"b\"")
        );
        assert_eq!(any_expr("秤 ，", &["title_", "body_"]), None);
        let long: String = "特种设备安全监察条例第一条为了加强".repeat(20);
        assert_eq!(any_expr(&long, &[""]).map(|e| e.matches(" OR ").count() + 1), Some(17), "distinct bigrams only (16 inside, one across the repeat)");
    }

    #[test]
    fn snippet_finds_a_bigram_when_the_whole_query_is_absent() {
        let s = snippet("前文很长很长很长很长很长很长，办理生产许可证需要五个工作日", "咨询生产许可证有效期", 10);
        assert!(s.contains("生产"), "{s}");
    }

    #[test]
    fn snippet_centres_on_the_term() {
        let s = snippet("第一条 为了加强特种设备安全工作，预防特种设备事故", "特种设备", 12);
        assert!(s.contains("特种设备"), "{s}");
    }
}
