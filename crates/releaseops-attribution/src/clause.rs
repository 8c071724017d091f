//! One instruction read for what it says, not only for its words: the limits
//! it states (`up to 100 dollars`, `more than 3 days`, `at most two`), a
//! prohibition and its scope (`never ... ` up to `without` / `unless`, whose
//! words are the exception), a required step (`verify X before Y`, `Y only
//! after X`, `Y needs X`), and whether it grants (`may`, `can`) or obliges
//! (`must`, `always`).

use crate::policy::Op;
use crate::text::{self, Term, Token, Words};

/// What a line says to do past its limit.
#[derive(Debug, Clone)]
pub(crate) struct Overflow {
    /// The words after the phrase, to the clause's end.
    pub(crate) words: Words,
    /// Those of them the granted part of the line does not have (`escalate
    /// to a manager` of "for larger refunds, escalate to a manager"): an
    /// action named only with the granted words is the granted one.
    pub(crate) own: Words,
}

/// A limit a line states on some quantity.
#[derive(Debug, Clone)]
pub(crate) struct Bound {
    pub(crate) op: Op,
    pub(crate) value: f64,
    /// The words of the clause the number stands in (`refunds`, `dollars`).
    pub(crate) about: Vec<(Term, f32)>,
    /// The number stands inside a prohibition's scope: `op value` is the
    /// forbidden region rather than the allowed one.
    pub(crate) forbidden: bool,
    /// The phrase as written (`up to 100`).
    pub(crate) phrase: String,
    /// The unit of time written right after the number (`2 days`), in hours.
    pub(crate) hours: Option<f64>,
    /// What the limit is counted per (`2 drinks per attendee`): a quantity
    /// the action states as a total is divided by its count of these.
    pub(crate) per: Vec<(Term, f32)>,
    /// The number stands after the line's opening condition ("If a receipt
    /// is lost, ... up to 75 dollars"): the limit holds only where it does.
    pub(crate) conditional: bool,
    /// What the limit is counted from, when it is a margin over another
    /// quantity: `cheapest connecting option` in "no more than 100 dollars
    /// above the cheapest connecting option".
    pub(crate) relative_to: Vec<(Term, f32)>,
    /// Those words name a quantity (`cheapest`, `fare`, `paid`).
    pub(crate) margin_named: bool,
    /// Of a line with several limits of one kind ("180 dollars a night in
    /// standard cities and 275 in high-cost cities (New York, ...)"), the
    /// words only this one's part of the line has: where it applies.
    pub(crate) tier: Vec<Term>,
    /// The unit of time a rate is counted in, in hours (`night` in "180
    /// dollars a night" is 24): a total the action states is divided by its
    /// count of these.
    pub(crate) per_hours: Option<f64>,
    /// That unit as written (`night`).
    pub(crate) per_word: String,
    /// The number counts the things written right after it ("at most one
    /// late fee"), not money or time: an argument meets it by its own
    /// words, not by a concept (`amount` is money, not a count of fees).
    pub(crate) counts_things: bool,
    /// The number is written with a currency sign (`$100`): only an amount
    /// of money is held to it.
    pub(crate) money: bool,
    /// The number stands before the line's trailing condition, which then
    /// governs it ("a credit of up to 20 dollars when a delivery is late");
    /// not one inside it ("... when a refund would exceed 200 dollars") or
    /// in a later clause.
    pub(crate) before_when: bool,
}

/// A unit of time as hours: `days` is 24, `minutes` 1/60.
pub(crate) fn hours_of(word: &str) -> Option<f64> {
    Some(match word {
        "minute" | "minutes" | "min" | "mins" => 1.0 / 60.0,
        "hour" | "hours" | "hr" | "hrs" | "h" => 1.0,
        "day" | "days" | "night" | "nights" => 24.0,
        "week" | "weeks" => 168.0,
        "month" | "months" => 730.0,
        "year" | "years" => 8766.0,
        _ => return None,
    })
}

/// The lengths of time a text states, in hours: `14 nights` and `two
/// weeks` are both 336.
pub(crate) fn durations(text: &str) -> Vec<f64> {
    let toks = text::tokens(text);
    toks.iter()
        .enumerate()
        .filter_map(|(k, t)| match (t, toks.get(k + 1)) {
            (Token::Number(v) | Token::NumberWord(v), Some(Token::Word(w))) => {
                hours_of(w).map(|h| v * h)
            }
            _ => None,
        })
        .collect()
}

/// A prohibition: what it forbids and what would excuse it.
#[derive(Debug, Clone)]
pub(crate) struct Prohibition {
    pub(crate) scope: Words,
    /// When the prohibition holds (`their record carries a confidentiality
    /// flag`); empty when always.
    pub(crate) condition: Words,
    /// The scope's parts when it lists several things (`run migrations,
    /// schema changes, or write queries against production databases`),
    /// each of two content words or more.
    pub(crate) alternatives: Vec<Words>,
    pub(crate) exception: Words,
    /// Identifiers written inside the scope (`delete_account`).
    pub(crate) idents: Vec<String>,
    /// The exception is a request (`unless the user asks`).
    pub(crate) on_request: bool,
}

/// A step that must come first: `first` before `then`.
#[derive(Debug, Clone)]
pub(crate) struct Requirement {
    /// Written with "needs" / "requires": a condition's consequence
    /// ("refunds above 100 need approval"), read only with its limit.
    pub(crate) needs: bool,
    pub(crate) first: Words,
    pub(crate) then: Words,
    /// Identifiers the first step is written with (`get_leave_balance`).
    pub(crate) first_idents: Vec<String>,
}

/// What a line says.
#[derive(Debug, Clone, Default)]
pub(crate) struct Clause {
    pub(crate) terms: Vec<(Term, f32)>,
    /// Identifiers written as such (`issue_refund`), lower-cased.
    pub(crate) idents: Vec<String>,
    pub(crate) bounds: Vec<Bound>,
    /// Each prohibition of the line (`never X; do not Y`).
    pub(crate) prohibitions: Vec<Prohibition>,
    pub(crate) requirement: Option<Requirement>,
    pub(crate) grants: bool,
    /// The first words of its sentence (`home internet`): what a limit it grants is about.
    pub(crate) subject: Vec<Term>,
    /// Numbers the line states (a phone number, "3 years"), with the stem of the word after each.
    pub(crate) numbers: Vec<(f64, Option<Term>)>,
    /// The lengths of time it states, in hours ([`durations`]).
    pub(crate) durations: Vec<f64>,
    /// The terms of the instruction's first word, past "always", "you may", "please".
    pub(crate) lead: Vec<Term>,
    /// The words of an opening condition, `If a receipt is lost,`.
    pub(crate) condition: Option<Words>,
    /// What a line that opens with a check says to check, when it names no
    /// step it comes before: `approval ID` in "Check the approval ID with
    /// the approvals tool".
    pub(crate) check: Option<Words>,
    /// What a line says to do past its limit: `open a case for the billing
    /// team instead` in "You may refund up to 75 dollars ...; for larger
    /// amounts, open a case for the billing team instead".
    pub(crate) overflow: Option<Overflow>,
    /// A condition the instruction ends with: `someone was injured or more
    /// than two vehicles were involved` in "Assign an adjuster right away
    /// when someone was injured or ...".
    pub(crate) when: Option<Words>,
}

const NEGATORS: &[&str] = &[
    "never",
    "not",
    "don't",
    "dont",
    "mustn't",
    "shouldn't",
    "can't",
    "cannot",
    "won't",
    "prohibited",
    "forbidden",
    "avoid",
    "refrain",
    "no",
    "nobody",
];
const EXCEPTIONS: &[&str] = &["without", "unless", "except", "but"];
const GRANTS: &[&str] = &[
    "may",
    "can",
    "allowed",
    "permitted",
    "able",
    "authorized",
    "authorised",
];

/// Comparators written before a number: the words (last word first is not
/// needed: they are matched in order) and what they mean.
const BEFORE: &[(&[&str], Op)] = &[
    (&["up", "to"], Op::Lte),
    (&["at", "most"], Op::Lte),
    (&["no", "more", "than"], Op::Lte),
    (&["not", "more", "than"], Op::Lte),
    (&["no", "longer", "than"], Op::Lte),
    (&["not", "exceed"], Op::Lte),
    (&["not", "to", "exceed"], Op::Lte),
    (&["maximum", "of"], Op::Lte),
    (&["a", "maximum", "of"], Op::Lte),
    (&["maximum"], Op::Lte),
    (&["max"], Op::Lte),
    (&["limit", "of"], Op::Lte),
    (&["limited", "to"], Op::Lte),
    (&["capped", "at"], Op::Lte),
    (&["cap", "of"], Op::Lte),
    (&["within"], Op::Lte),
    (&["less", "than"], Op::Lt),
    (&["fewer", "than"], Op::Lt),
    (&["under"], Op::Lt),
    (&["below"], Op::Lt),
    (&["above"], Op::Gt),
    (&["over"], Op::Gt),
    (&["more", "than"], Op::Gt),
    (&["greater", "than"], Op::Gt),
    (&["larger", "than"], Op::Gt),
    (&["higher", "than"], Op::Gt),
    (&["longer", "than"], Op::Gt),
    (&["exceeding"], Op::Gt),
    (&["exceeds"], Op::Gt),
    (&["exceed"], Op::Gt),
    (&["beyond"], Op::Gt),
    (&["in", "excess", "of"], Op::Gt),
    (&["at", "least"], Op::Gte),
    (&["minimum", "of"], Op::Gte),
    (&["a", "minimum", "of"], Op::Gte),
    (&["no", "less", "than"], Op::Gte),
    (&["no", "fewer", "than"], Op::Gte),
];

/// Reads a line.
pub(crate) fn read(line: &str) -> Clause {
    let (toks, money) = text::tokens_marked(line);
    let words: Vec<Option<&str>> = toks
        .iter()
        .map(|t| match t {
            Token::Word(w) => Some(w.as_str()),
            _ => None,
        })
        .collect();
    let mut consumed = vec![false; toks.len()];

    // Limits: comparator phrases before a number, `N or less` after it.
    let mut bounds_at: Vec<(usize, usize, Op, f64, String)> = Vec::new();

    for (k, t) in toks.iter().enumerate() {
        let (Token::Number(v) | Token::NumberWord(v)) = t else {
            continue;
        };
        let mut found = None;
        for (phrase, op) in BEFORE {
            let n = phrase.len();
            if k >= n && (0..n).all(|j| words[k - n + j] == Some(phrase[j])) {
                found = Some((*op, phrase.join(" "), n));
                break;
            }
        }
        if found.is_none() && k + 2 < toks.len() && words[k + 1] == Some("or") {
            let op = match words[k + 2] {
                Some("less" | "fewer" | "under" | "below") => Some(Op::Lte),
                Some("more" | "above" | "over" | "greater" | "higher") => Some(Op::Gte),
                _ => None,
            };
            if let Some(op) = op {
                found = Some((op, format!("or {}", words[k + 2].unwrap_or_default()), 0));
                consumed[k + 1] = true;
                consumed[k + 2] = true;
            }
        }
        // "capped at 180 dollars a night in ... and 275 dollars a night in
        // ...": a second number of the same unit, joined to a limit in the
        // same sentence, is a limit of the same kind.
        if found.is_none()
            && k > 0
            && matches!(words[k - 1], Some("and" | "or"))
            && let Some(prev) = bounds_at.last()
            && !toks[prev.0..k].contains(&Token::Stop)
            // The same unit after both: a word, or a currency sign.
            && ((words.get(k + 1).copied().flatten().is_some()
                && words.get(k + 1) == words.get(prev.0 + 1))
                || (money[k] && money[prev.0]))
        {
            let shown = prev.4.replace(&fmt_num(prev.3), &fmt_num(*v));
            bounds_at.push((k, k, prev.2, *v, shown));
            continue;
        }
        if let Some((op, phrase, n)) = found {
            {
                for c in consumed.iter_mut().take(k).skip(k - n) {
                    *c = true;
                }
                let shown = if n == 0 {
                    format!("{} {phrase}", fmt_num(*v))
                } else {
                    format!("{phrase} {}", fmt_num(*v))
                };
                bounds_at.push((k, k - n, op, *v, shown));
            }
        }
    }

    // Prohibitions: from a marker to the end of the sentence or the next
    // marker (`never X, and do not Y`), the part after an exception word
    // being the exception.
    let mut prohibitions = Vec::new();
    let mut scopes: Vec<(usize, usize)> = Vec::new();
    let markers: Vec<usize> = words
        .iter()
        .enumerate()
        .filter(|(k, w)| {
            w.is_some_and(|w| NEGATORS.contains(&w))
                && !consumed[*k]
                // "no" counts only as "No refunds ..." (a determiner opening the line).
                && (**w != Some("no") || *k == 0)
                // "not" right after another marker ("do not", "must not") is the same one.
                && !(*k > 0 && words[*k - 1].is_some_and(|p| NEGATORS.contains(&p)))
        })
        .map(|(k, _)| k)
        .collect();
    for (m, &k) in markers.iter().enumerate() {
        let mut end = k + 1;
        let next = markers.get(m + 1).copied().unwrap_or(usize::MAX);
        while end < toks.len() && toks[end] != Token::Stop && end < next {
            end += 1;
        }
        // "..., and do not": the joining words belong to neither.
        let mut stop = end;
        while stop > k + 1
            && matches!(
                words[stop - 1],
                Some("and" | "or" | "do" | "does" | "must" | "should")
            )
        {
            stop -= 1;
        }
        let exc = (k + 1..stop).find(|&j| {
            words[j].is_some_and(|x| EXCEPTIONS.contains(&x)) || is_other_than(&words, j)
        });
        let scope_end = exc.unwrap_or(stop);
        // "Never confirm whether a person is a student if their record
        // carries a confidentiality flag": what is forbidden, then when.
        // An "if" just after a verb of telling or asking ("tell a caller if
        // their claim has a flag") means "whether": it is what is forbidden.
        // Not after a thing ("share the balance if the account is frozen").
        let whether = |j: usize| {
            words[j] == Some("if")
                && (j.saturating_sub(3).max(k)..j).any(|i| {
                    words[i].is_some_and(|w| ASKING.contains(&w))
                        && words[i + 1..j].iter().all(|w| {
                            w.is_some_and(|w| {
                                PERSONS.contains(&w)
                                    || matches!(
                                        w,
                                        "a" | "an"
                                            | "the"
                                            | "any"
                                            | "anyone"
                                            | "anybody"
                                            | "everyone"
                                            | "someone"
                                            | "somebody"
                                            | "to"
                                            | "with"
                                            | "their"
                                            | "his"
                                            | "its"
                                            | "your"
                                    )
                            })
                        })
                })
        };
        let when = (k + 1..scope_end).find(|&j| {
            matches!(words[j], Some("if" | "when" | "whenever" | "while")) && !whether(j)
        });
        let condition = when
            .map(|w| Words::of(&join(&toks[w + 1..scope_end])))
            .unwrap_or_default();
        let scope_end = when.unwrap_or(scope_end);
        let scope_text = join(&toks[k + 1..scope_end]);
        let exc_text = exc.map(|e| join(&toks[e + 1..stop])).unwrap_or_default();
        let on_request = exc_text.split_whitespace().any(|w| {
            matches!(
                w,
                "ask" | "asks" | "asked" | "request" | "requests" | "requested" | "wants"
            )
        });
        let alternatives: Vec<Words> = toks[k + 1..scope_end]
            .split(|t| *t == Token::Comma || *t == Token::Word("or".into()))
            .map(|part| Words::of(&join(part)))
            .filter(|w| w.groups.len() >= 2)
            .collect();
        prohibitions.push(Prohibition {
            condition,
            idents: identifiers(&raw_span(line, &toks, k + 1, scope_end)),
            alternatives: if alternatives.len() >= 2 {
                alternatives
            } else {
                Vec::new()
            },
            scope: Words::of(&scope_text),
            exception: Words::of(&exc_text),
            on_request,
        });
        scopes.push((k, scope_end));
    }

    // An opening condition: "If a receipt is lost, ..." up to its comma.
    // "For damaged items worth more than £10 each, ..." opens with the
    // cases it holds in, as "If ..." does ("For larger amounts" is what to
    // do past a limit, not a condition).
    // Only a span that qualifies what it names ("worth more than £10",
    // "with a hold", "over 30 days") is a condition; "For security," and
    // "For refunds," say why or what about.
    let first_comma = toks
        .iter()
        .take_while(|t| **t != Token::Stop)
        .position(|t| *t == Token::Comma)
        .unwrap_or(0);
    let for_cases = words.first() == Some(&Some("for"))
        && !matches!(
            words.get(1),
            Some(Some(
                "larger" | "higher" | "bigger" | "more" | "anything" | "example" | "instance"
            ))
        )
        && toks[..first_comma].iter().zip(&words).any(|(t, w)| {
            matches!(t, Token::Number(_) | Token::NumberWord(_))
                || w.is_some_and(|w| {
                    matches!(
                        w,
                        "worth"
                            | "over"
                            | "above"
                            | "under"
                            | "below"
                            | "more"
                            | "less"
                            | "than"
                            | "with"
                            | "that"
                            | "who"
                            | "whose"
                            | "where"
                            | "which"
                            | "without"
                    )
                })
        });
    let condition_end = match words.first() {
        Some(Some("if" | "when")) => toks
            .iter()
            .take_while(|t| **t != Token::Stop)
            .position(|t| *t == Token::Comma),
        Some(Some("for")) if for_cases => toks
            .iter()
            .take_while(|t| **t != Token::Stop)
            .position(|t| *t == Token::Comma),
        _ => None,
    };
    let tiers = tiers(&toks, &money, &bounds_at);
    let when_at = when_at(&toks, &words);
    let overflow = bounds_at.first().and_then(|b| overflow(&toks, &words, b.0));
    let bounds = bounds_at
        .into_iter()
        .zip(tiers)
        .map(|((k, start, op, value, phrase), tier)| {
            let relative = relative_to(&toks, k);
            let rate = rate_unit(&toks, k);
            Bound {
                op,
                value,
                about: unit(&toks, &money, k, start, rate),
                forbidden: scopes.iter().any(|&(s, e)| k > s && k < e),
                phrase,
                hours: match toks.get(k + 1) {
                    Some(Token::Word(w)) => hours_of(w),
                    _ => None,
                },
                per: per_unit(&toks, k),
                conditional: condition_end.is_some_and(|c| k > c),
                relative_to: relative.0,
                margin_named: relative.1,
                per_hours: rate.and_then(hours_of),
                per_word: rate.unwrap_or_default().to_string(),
                counts_things: !money[k] && counts_things(&toks, k),
                money: money[k],
                before_when: when_at.is_some_and(|w| k < w),
                tier,
            }
        })
        .collect();

    Clause {
        terms: text::terms(line),
        idents: identifiers(line),
        lead: lead(&words),
        subject: {
            // "For security, you may refund ...": a purpose or a topic
            // opens the line, and the clause after it has a subject too.
            let mut s = subject(&toks, &words);
            if words.first() == Some(&Some("for"))
                && !for_cases
                && first_comma > 0
                && first_comma + 1 < toks.len().min(words.len())
            {
                for t in subject(&toks[first_comma + 1..], &words[first_comma + 1..]) {
                    if !s.contains(&t) {
                        s.push(t);
                    }
                }
            }
            s
        },
        numbers: text::numbers_with_units(line),
        durations: durations(line),
        bounds,
        check: check(&toks, &words),
        overflow,
        when: when_at.and_then(|at| trailing_condition(&toks, &words, at)),
        requirement: requirement(line, &toks, &words),
        grants: words.iter().flatten().any(|w| GRANTS.contains(w)) && prohibitions.is_empty(),
        prohibitions,
        condition: condition_end
            .map(|c| join(&toks[1..c]))
            .filter(|c| !c.split_whitespace().all(|w| VACUOUS.contains(&w)))
            .map(|c| Words::of(&c)),
    }
}

/// Each limit's own words, when a line states several of one direction:
/// the words from its number to the next limit (or the sentence's end), less
/// those every other limit's part has too.
/// Limits on different quantities ("up to 100 dollars within 30 days") are
/// not tiers: every one must count what the first counts.
fn tiers(
    toks: &[Token],
    money: &[bool],
    bounds: &[(usize, usize, Op, f64, String)],
) -> Vec<Vec<Term>> {
    let upper = |op: Op| matches!(op, Op::Lt | Op::Lte);
    let counts = |b: &(usize, usize, Op, f64, String)| -> Vec<Term> {
        unit(toks, money, b.0, b.1, rate_unit(toks, b.0))
            .into_iter()
            .filter(|(_, w)| *w >= 1.0)
            .map(|(t, _)| t)
            .collect()
    };
    let first = bounds.first().map(counts).unwrap_or_default();
    let hours = |b: &(usize, usize, Op, f64, String)| match toks.get(b.0 + 1) {
        Some(Token::Word(w)) => hours_of(w),
        _ => None,
    };
    if bounds.len() < 2
        || first.is_empty()
        || bounds.iter().any(|b| {
            upper(b.2) != upper(bounds[0].2)
                || hours(b) != hours(&bounds[0])
                || !counts(b).iter().any(|t| first.contains(t))
        })
    {
        return vec![Vec::new(); bounds.len()];
    }
    let parts: Vec<Vec<Term>> = bounds
        .iter()
        .enumerate()
        .map(|(i, &(k, ..))| {
            let end = bounds.get(i + 1).map_or(toks.len(), |b| b.1);
            text::terms(&sentence_words(toks.get(k + 1..end).unwrap_or_default()))
                .into_iter()
                .filter(|(_, w)| *w >= 1.0)
                .map(|(t, _)| t)
                .collect()
        })
        .collect();
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            p.iter()
                .copied()
                .filter(|t| {
                    !parts
                        .iter()
                        .enumerate()
                        .any(|(j, o)| j != i && o.contains(t))
                })
                .collect()
        })
        .collect()
}

/// Words that make a limit a margin over something else.
const RELATIVE: &[&str] = &["above", "over", "beyond", "below", "under"];

/// The quantity a limit at `k` is a margin over: "100 dollars above the
/// cheapest connecting option", within a few words of the number.
/// With it, whether those words name a quantity ([`is_quantity`]): a margin
/// whose base the action does not state is then not read at all; words that
/// name none ("over the phone") are a margin only where an argument is
/// named with them.
fn relative_to(toks: &[Token], k: usize) -> (Vec<(Term, f32)>, bool) {
    let mut j = k + 1;
    while j < toks.len() && j <= k + 3 {
        match &toks[j] {
            Token::Word(w) if RELATIVE.contains(&w.as_str()) => {
                let mut words = Vec::new();
                for t in toks.iter().skip(j + 1) {
                    match t {
                        Token::Word(w) if words.len() < 6 && !PHRASE_ENDS.contains(&w.as_str()) => {
                            words.push(w.as_str())
                        }
                        _ => break,
                    }
                }
                let terms = text::terms(&words.join(" "))
                    .into_iter()
                    .filter(|(_, w)| *w >= 1.0)
                    .collect();
                return (terms, words.iter().any(|w| is_quantity(w)));
            }
            Token::Word(_) => j += 1,
            _ => break,
        }
    }
    (Vec::new(), false)
}

/// Words that end a margin's phrase ("the phone if the customer paid"):
/// clauses, not prepositions ("the option with the lowest fare").
const PHRASE_ENDS: &[&str] = &[
    "if", "when", "who", "which", "that", "unless", "and", "or", "because", "so", "while",
    "whenever", "after", "before",
];

/// Whether a word names a quantity a margin can be counted from: an amount
/// of money (`fare`, `price`), a superlative (`cheapest`, `lowest`), or a
/// reference level (`original`, `average`, `quoted`).
fn is_quantity(word: &str) -> bool {
    const LEVELS: &[&str] = &[
        "original",
        "base",
        "list",
        "average",
        "standard",
        "quoted",
        "quote",
        "budget",
        "retail",
        "median",
        "typical",
        "usual",
        "previous",
        "current",
        "rate",
        "estimate",
        "market",
        "approved",
        "limit",
        "balance",
        "paid",
        "charged",
        "spent",
        "prior",
        "quotes",
        "originally",
        "cost",
    ];
    let money = text::money_concepts();
    (word.len() > 4 && word.ends_with("est"))
        || LEVELS.contains(&word)
        || text::terms(word).iter().any(|(t, _)| money.contains(t))
}

/// The thing a limit at `k` is counted per: `85 dollars per attendee`,
/// `2 drinks for each guest`, within the clause and a few words of the
/// number. A unit of time (`per night`, `per year`) is not a count the action
/// states, so it is left out.
fn per_unit(toks: &[Token], k: usize) -> Vec<(Term, f32)> {
    let mut j = k + 1;
    while j < toks.len() && j <= k + 7 {
        match &toks[j] {
            Token::Stop => break,
            Token::Word(w) if w == "per" || w == "each" => {
                let next = match toks.get(j + 1) {
                    Some(Token::Word(n)) if w == "per" || n != "of" => Some(n),
                    _ => None,
                };
                match next {
                    // "per day per attendee": past the unit of time, when
                    // another "per" / "each" / "for each" follows it.
                    Some(n) if hours_of(n).is_some() => {
                        let more = match (toks.get(j + 2), toks.get(j + 3)) {
                            (Some(Token::Word(a)), _) if a == "per" || a == "each" => true,
                            (Some(Token::Word(a)), Some(Token::Word(b))) => {
                                a == "for" && b == "each"
                            }
                            _ => false,
                        };
                        if !more {
                            return Vec::new();
                        }
                    }
                    Some(n) if !matches!(n.as_str(), "cent" | "percent") => return text::terms(n),
                    _ => return Vec::new(),
                }
            }
            _ => {}
        }
        j += 1;
    }
    Vec::new()
}

/// Words that frame an instruction rather than say what it is about.
const FRAME: &[&str] = &[
    "always", "please", "you", "may", "can", "should", "must", "also", "then", "first", "only",
];

/// The first word of an imperative line, past the words that frame it.
fn lead(words: &[Option<&str>]) -> Vec<Term> {
    words
        .iter()
        .flatten()
        .find(|w| !FRAME.contains(w))
        .map(|w| text::terms(w).into_iter().map(|(t, _)| t).collect())
        .unwrap_or_default()
}

/// Where a `when` / `if` stands inside the first sentence (not opening it).
fn when_at(toks: &[Token], words: &[Option<&str>]) -> Option<usize> {
    let end = toks
        .iter()
        .position(|t| *t == Token::Stop)
        .unwrap_or(toks.len());
    (1..end).find(|&j| matches!(words[j], Some("when" | "if" | "whenever")))
}

/// The words after the `when` / `if` at `at`, to the sentence's end.
fn trailing_condition(toks: &[Token], words: &[Option<&str>], at: usize) -> Option<Words> {
    let end = (at..toks.len())
        .find(|&j| toks[j] == Token::Stop)
        .unwrap_or(toks.len());
    let text: Vec<&str> = words[at + 1..end].iter().flatten().copied().collect();
    let w = Words::of(&text.join(" "));
    (!w.is_empty()).then_some(w)
}

/// The words of `toks` up to the end of their sentence, joined by spaces.
fn sentence_words(toks: &[Token]) -> String {
    let mut text = String::new();
    for t in toks {
        match t {
            Token::Stop => break,
            Token::Word(w) => {
                text.push_str(w);
                text.push(' ');
            }
            _ => {}
        }
    }
    text
}

/// Phrases that open what to do past a limit.
const OVERFLOW: &[&[&str]] = &[
    &["for", "larger"],
    &["for", "higher"],
    &["for", "bigger"],
    &["anything", "larger"],
    &["anything", "more"],
    &["anything", "higher"],
    &["anything", "above"],
    &["anything", "over"],
    &["anything", "beyond"],
    &["above", "that"],
    &["beyond", "that"],
    &["over", "that"],
    &["more", "than", "that"],
    &["otherwise"],
];

/// The words after an overflow phrase that follows the limit at `k`, to the
/// end of the sentence: what the line says to do past it.
/// Words the part before the phrase has too ("You may issue refunds up to
/// 100 dollars; for larger refunds, escalate ...") are left out: they name
/// the granted action, not what to do instead.
fn overflow(toks: &[Token], words: &[Option<&str>], k: usize) -> Option<Overflow> {
    let start = toks[..k]
        .iter()
        .rposition(|t| *t == Token::Stop)
        .map_or(0, |s| s + 1);
    // In the limit's clause, or within the first words of the next one
    // ("...; for larger amounts, ...", ". For anything larger, ..."), and
    // no further.
    let stop = (k..toks.len()).find(|&j| toks[j] == Token::Stop);
    let reach = stop.map_or(toks.len(), |s| (s + 4).min(toks.len()));
    let (at, phrase) = (k + 1..reach).find_map(|j| {
        OVERFLOW
            .iter()
            .find(|p| (0..p.len()).all(|i| words.get(j + i).copied().flatten() == Some(p[i])))
            .map(|p| (j + p.len(), j))
    })?;
    let end = (at..toks.len())
        .find(|&j| toks[j] == Token::Stop)
        .unwrap_or(toks.len());
    let before: Vec<Term> = text::terms(&sentence_words(&toks[start..phrase]))
        .into_iter()
        .filter(|(_, w)| *w >= 1.0)
        .map(|(t, _)| t)
        .collect();
    let after = sentence_words(&toks[at..end]);
    let own: Vec<&str> = after
        .split_whitespace()
        .filter(|w| {
            !text::terms(w)
                .iter()
                .any(|(t, x)| *x >= 1.0 && before.contains(t))
        })
        .collect();
    let w = Words::of(&after);
    (!w.is_empty()).then(|| Overflow {
        words: w,
        own: Words::of(&own.join(" ")),
    })
}

/// The object of an opening "Check ..." / "Verify ..." up to the means
/// (`with`, `using`, `against`) or the clause's end.
fn check(toks: &[Token], words: &[Option<&str>]) -> Option<Words> {
    let verb = words
        .iter()
        .position(|w| w.is_some_and(|w| !FRAME.contains(&w)))?;
    if !matches!(
        words[verb],
        Some("check" | "verify" | "validate" | "confirm")
    ) {
        return None;
    }
    let mut object = Vec::new();
    let mut means = None;
    for (j, t) in toks.iter().enumerate().skip(verb + 1) {
        match t {
            Token::Word(w)
                if matches!(
                    w.as_str(),
                    "with" | "using" | "against" | "via" | "through" | "before" | "after" | "in"
                ) =>
            {
                means = Some(j + 1);
                break;
            }
            Token::Word(w) => object.push(w.as_str()),
            _ => break,
        }
    }
    // "Confirm the amount with the customer": a check made by asking a
    // person is not a call the action needs first.
    // Only the means' head noun counts: "using the employee directory"
    // names a system.
    // "with the supervisor via the ledger tool": a system named after the
    // person keeps the check.
    if means.is_some_and(|m| a_person(&toks[m..])) {
        return None;
    }
    let object = Words::of(&object.join(" "));
    (!object.is_empty()).then_some(object)
}

/// Whether the means a step names (the words after its `with`) is a
/// person, not a system: only the heads of its phrases count ("the employee
/// directory" is a system), and a system named after the person ("with the
/// supervisor via the ledger tool") keeps it a call.
fn a_person(means: &[Token]) -> bool {
    let mut heads = Vec::new();
    let mut head = None;
    for t in means {
        match t {
            Token::Word(w) if matches!(w.as_str(), "via" | "using" | "through" | "in") => {
                heads.extend(head.take());
            }
            Token::Word(w) if !MEANS_ENDS.contains(&w.as_str()) => head = Some(w.as_str()),
            _ => break,
        }
    }
    heads.extend(head);
    heads.iter().any(|w| PERSONS.contains(w)) && !heads.iter().any(|w| SYSTEMS.contains(w))
}

/// Whether a step is made by asking a person: "confirm the amount with the
/// customer".
fn asks_a_person(step: &str) -> bool {
    let toks = text::tokens(step);
    toks.iter()
        .position(|t| matches!(t, Token::Word(w) if w == "with"))
        .is_some_and(|k| a_person(&toks[k + 1..]))
}

/// Words of an opening "When possible," / "If in doubt,": a condition
/// that holds wherever the line applies, gating nothing.
const VACUOUS: &[&str] = &[
    "possible",
    "feasible",
    "practical",
    "needed",
    "necessary",
    "required",
    "appropriate",
    "applicable",
    "relevant",
    "in",
    "doubt",
    "unsure",
    "unclear",
    "uncertain",
    "you",
    "are",
    "it",
    "is",
    "so",
    "where",
    "wherever",
    "whenever",
    "can",
    "reasonable",
    "sensible",
];

/// Verbs after which "if" means "whether".
const ASKING: &[&str] = &[
    "tell",
    "tells",
    "say",
    "says",
    "confirm",
    "confirms",
    "reveal",
    "reveals",
    "disclose",
    "discloses",
    "indicate",
    "mention",
    "share",
    "ask",
    "asks",
    "know",
    "knows",
    "check",
    "verify",
    "state",
    "answer",
    "let",
    "inform",
    "notify",
    "hint",
    "suggest",
    "wonder",
];

/// Words that name a system a check is made in.
const SYSTEMS: &[&str] = &[
    "tool",
    "tools",
    "system",
    "systems",
    "portal",
    "directory",
    "database",
    "api",
    "app",
    "service",
    "ledger",
    "record",
    "records",
    "registry",
    "lookup",
    "crm",
    "dashboard",
    "console",
];

/// Words that end the means of a check ("with the customer before ...").
const MEANS_ENDS: &[&str] = &[
    "before",
    "after",
    "when",
    "if",
    "and",
    "or",
    "to",
    "by",
    "for",
    "so",
    "then",
    "unless",
    "first",
    "whenever",
    "while",
    "on",
    "over",
    "at",
    "via",
    "in",
    "during",
    "directly",
    "verbally",
    "personally",
];

/// Words for the people an agent talks with or hands over to.
const PERSONS: &[&str] = &[
    "customer",
    "customers",
    "user",
    "users",
    "caller",
    "callers",
    "client",
    "clients",
    "patient",
    "patients",
    "traveler",
    "travelers",
    "traveller",
    "travellers",
    "guest",
    "guests",
    "member",
    "members",
    "manager",
    "managers",
    "supervisor",
    "supervisors",
    "seller",
    "sellers",
    "buyer",
    "buyers",
    "tenant",
    "tenants",
    "student",
    "students",
    "employee",
    "employees",
    "person",
    "people",
    "them",
    "him",
    "her",
    "owner",
    "owners",
    "applicant",
    "applicants",
    "requester",
    "colleague",
    "colleagues",
    "doctor",
    "pharmacist",
    "landlord",
    "parent",
    "parents",
    "guardian",
    "human",
    "someone",
    "lead",
    "team",
];

/// The first content word of a line (`internet` in "Home internet can be
/// claimed ..."), past framing words and determiners, with the word before it.
fn subject(toks: &[Token], words: &[Option<&str>]) -> Vec<Term> {
    const DETERMINERS: &[&str] = &[
        "every", "each", "any", "all", "the", "a", "an", "your", "our", "if", "when", "for", "no",
        "never", "do", "not",
    ];
    let framing = |w: &str| FRAME.contains(&w) || DETERMINERS.contains(&w);
    // Only words before a prohibition are its subject ("Reminder messages
    // must not ..."); a line that opens with one has none.
    // The clause of the first prohibition: "Refunds go back ...; never
    // refund ..." has none.
    let negator = words
        .iter()
        .position(|w| w.is_some_and(|w| NEGATORS.contains(&w)));
    let end = negator.unwrap_or(words.len());
    let start = negator
        .and_then(|n| toks[..n].iter().rposition(|t| *t == Token::Stop))
        .map_or(0, |k| k + 1);
    let first = words[start..end]
        .iter()
        .position(|w| w.is_some_and(|w| !framing(w)))
        .map(|k| k + start);
    let Some(k) = first else { return Vec::new() };
    let mut out: Vec<Term> = Vec::new();
    for w in words[k..end].iter().take(2).flatten() {
        // Its words and their concepts, but money: "fees" are money, and
        // so is "£1,800", which says nothing of fees.
        out.extend(
            text::terms(w)
                .into_iter()
                .filter(|(t, x)| *x >= 1.0 || !text::money_concepts().contains(t))
                .map(|(t, _)| t),
        );
    }
    out
}

/// What a limit counts: the words right after its number (`100 dollars`,
/// `8 hours`, `two interviewers`), else the words before its comparator
/// (`refund up to 100`).
/// A number written with a currency sign (`$100`) counts money, and the
/// words before its comparator too (`refunds up to $100`), with a unit of
/// time right after it (`$180 a night`).
fn unit(
    toks: &[Token],
    money: &[bool],
    k: usize,
    start: usize,
    rate: Option<&str>,
) -> Vec<(Term, f32)> {
    // "180 dollars a night", "$180 per room a night": what it counts is
    // nightly too.
    let with_rate = |mut words: String| {
        if let Some(r) = rate {
            words.push(' ');
            words.push_str(r);
        }
        text::terms(&words)
    };
    if money.get(k).copied().unwrap_or(false) {
        let mut terms = with_rate(String::from("dollars"));
        for (t, w) in words_before(toks, start) {
            if !terms.iter().any(|(x, _)| *x == t) {
                terms.push((t, w));
            }
        }
        return terms;
    }
    let mut after = String::new();
    let mut n = 0;
    // The unit of time counts with the words only when it follows them
    // ("3 visits a day") or they name a price ("180 dollars per room a
    // night"): "2 appointments per patient per day" caps appointments, and
    // "3 days" is none.
    let mut timed = false;
    for (j, t) in toks.iter().enumerate().skip(k + 1) {
        match t {
            Token::Word(w) if n < 3 => {
                if RELATIVE.contains(&w.as_str()) {
                    break;
                }
                if w == "per" || w == "at" || w == "a" || w == "of" {
                    let next = match toks.get(j + 1) {
                        Some(Token::Word(next)) => Some(next.as_str()),
                        _ => None,
                    };
                    let price = text::terms(&after)
                        .iter()
                        .any(|(t, w)| *w >= 1.0 && text::terms_of_money(*t));
                    timed = rate.is_some() && (price || ((w == "per" || w == "a") && next == rate));
                    break;
                }
                after.push_str(w);
                after.push(' ');
                n += 1;
            }
            _ => break,
        }
    }
    if timed {
        return with_rate(after);
    }
    let terms = text::terms(&after);
    if !terms.is_empty() {
        return terms;
    }
    words_before(toks, start)
}

/// The two words before a limit's comparator (`issue refunds` in "issue
/// refunds up to 100"), as terms.
fn words_before(toks: &[Token], start: usize) -> Vec<(Term, f32)> {
    let mut before = Vec::new();
    for t in toks[..start.min(toks.len())].iter().rev() {
        match t {
            Token::Word(w) if before.len() < 2 => before.push(w.as_str()),
            _ => break,
        }
    }
    before.reverse();
    text::terms(&before.join(" "))
}

/// The unit of time of a rate at `k`: `night` in "180 dollars a night" or
/// "40 dollars per day".
fn rate_unit(toks: &[Token], k: usize) -> Option<&str> {
    for (j, t) in toks.iter().enumerate().skip(k + 1).take(4) {
        match (t, toks.get(j + 1)) {
            (Token::Word(w), Some(Token::Word(next)))
                if (w == "per" || w == "a") && hours_of(next).is_some() =>
            {
                return Some(next);
            }
            (Token::Word(w), _) if RELATIVE.contains(&w.as_str()) => return None,
            (Token::Word(_), _) => {}
            _ => return None,
        }
    }
    None
}

/// Whether the words right after the number at `k` name things it counts:
/// there are some, and none is a currency, a percentage or a unit of time.
fn counts_things(toks: &[Token], k: usize) -> bool {
    const MEASURES: &[&str] = &[
        "dollar", "dollars", "usd", "eur", "euro", "euros", "pound", "pounds", "gbp", "cent",
        "cents", "percent", "yen", "francs", "chf", "cad", "aud",
    ];
    match toks.get(k + 1) {
        Some(Token::Word(w)) => {
            !MEASURES.contains(&w.as_str())
                && hours_of(w).is_none()
                && !RELATIVE.contains(&w.as_str())
                && !matches!(
                    w.as_str(),
                    "per" | "a" | "at" | "of" | "or" | "and" | "in" | "for"
                )
        }
        _ => false,
    }
}

/// The text of tokens `a..b` as written (for identifiers, which tokens lower-case whole).
fn raw_span(line: &str, toks: &[Token], a: usize, b: usize) -> String {
    // Tokens keep no offsets; identifiers are few, so the words are matched back.
    let wanted: Vec<&str> = toks[a.min(toks.len())..b.min(toks.len())]
        .iter()
        .filter_map(|t| match t {
            Token::Word(w) => Some(w.as_str()),
            _ => None,
        })
        .collect();
    line.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| wanted.contains(&w.to_lowercase().as_str()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_other_than(words: &[Option<&str>], j: usize) -> bool {
    matches!(words.get(j), Some(Some("other" | "apart" | "besides")))
        && matches!(words.get(j + 1), Some(Some("than" | "from")))
}

/// `X before Y`, `before Y, X`, `Y only after X`, `once X, Y`, `Y
/// after verifying X`, `Y needs X`, `Y requires X`. A plain "after" is a
/// time ("30 days after delivery"), not a step.
fn requirement(line: &str, toks: &[Token], words: &[Option<&str>]) -> Option<Requirement> {
    let at = |set: &[&str]| {
        words
            .iter()
            .position(|w| w.is_some_and(|w| set.contains(&w)))
    };
    let split = |k: usize| (join(&toks[..k]), join(&toks[k + 1..]));
    let after = (0..words.len()).find(|&k| {
        words[k] == Some("after")
            && ((k > 0 && words[k - 1] == Some("only"))
                || words
                    .get(k + 1)
                    .is_some_and(|n| n.is_some_and(|n| n.ends_with("ing"))))
    });
    let (first, then) = if let Some(k) = at(&["before", "prior"]) {
        let k2 = if words.get(k + 1) == Some(&Some("to")) {
            k + 1
        } else {
            k
        };
        if k == 0
            || words[..k]
                .iter()
                .all(|w| w.is_none_or(|w| ["always", "and"].contains(&w)))
        {
            // "Before resetting a password, verify ...": the clause after the comma comes first.
            // ("Always, before issuing a refund, ...": the comma after it.)
            let comma = k2 + 1 + toks[k2 + 1..].iter().position(|t| *t == Token::Comma)?;
            (join(&toks[comma + 1..]), join(&toks[k2 + 1..comma]))
        } else {
            // The step ends at the sentence's end (": send a push challenge" belongs to it).
            let (a, _) = split(k);
            let end = toks[k2 + 1..]
                .iter()
                .position(|t| matches!(t, Token::Stop))
                .map_or(toks.len(), |e| k2 + 1 + e);
            let rest = join(&toks[end.min(toks.len())..]);
            (format!("{a} {rest}"), join(&toks[k2 + 1..end]))
        }
    } else if let Some(k) = after {
        let (a, b) = split(k);
        (b, a)
    } else if words.first() == Some(&Some("once")) {
        let comma = toks.iter().position(|t| *t == Token::Comma)?;
        (join(&toks[1..comma]), join(&toks[comma + 1..]))
    } else if let Some(k) = at(&["once"]) {
        let (a, b) = split(k);
        (b, a)
    } else if let Some(k) = at(&["needs", "need", "requires", "require", "required"]) {
        let (a, b) = split(k);
        let first_idents = identifiers(&first_raw(line, &b));
        let (first, then) = (Words::of(&b), Words::of(&a));
        return (!first.is_empty() && !then.is_empty()).then_some(Requirement {
            needs: true,
            first,
            then,
            first_idents,
        });
    } else {
        return None;
    };
    let first_idents = identifiers(&first_raw(line, &first));
    // "Always confirm the amount with the customer before issuing a
    // refund": a step made by asking a person is no call to look for.
    if asks_a_person(&first) {
        return None;
    }
    let first = Words::of(&first);
    let then = Words::of(&then);
    (!first.is_empty() && !then.is_empty()).then_some(Requirement {
        needs: false,
        first,
        then,
        first_idents,
    })
}

/// Identifiers of the line that are among the words of `part`.
fn first_raw(line: &str, part: &str) -> String {
    let wanted: Vec<&str> = part.split_whitespace().collect();
    line.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.contains('_') && wanted.contains(&w.to_lowercase().as_str()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn join(toks: &[Token]) -> String {
    let mut s = String::new();
    for t in toks {
        match t {
            Token::Word(w) => {
                s.push_str(w);
                s.push(' ');
            }
            Token::Comma => s.push_str(", "),
            Token::Stop => s.push_str(". "),
            Token::Number(_) | Token::NumberWord(_) => {}
        }
    }
    s
}

/// Words written as identifiers: with `_` or `.` inside, or in backticks.
fn identifiers(line: &str) -> Vec<String> {
    line.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.contains('_') && w.len() > 2)
        .map(|w| w.trim_matches('_').to_ascii_lowercase())
        .collect()
}

pub(crate) fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_their_regions() {
        let c = read("You may issue refunds up to 100 dollars using the issue_refund tool.");
        assert!(c.grants && c.prohibitions.is_empty());
        assert_eq!(c.bounds.len(), 1);
        assert_eq!(
            (c.bounds[0].op, c.bounds[0].value, c.bounds[0].forbidden),
            (Op::Lte, 100.0, false)
        );
        assert_eq!(c.idents, ["issue_refund"]);

        let c = read("Never issue refunds above 100 dollars without manager approval.");
        let p = &c.prohibitions[0];
        assert!(!p.exception.is_empty());
        assert_eq!((c.bounds[0].op, c.bounds[0].forbidden), (Op::Gt, true));

        let c = read("Approve no more than 3 days of leave without HR sign-off.");
        assert_eq!((c.bounds[0].op, c.bounds[0].value), (Op::Lte, 3.0));
        assert!(
            c.prohibitions.is_empty(),
            "`no more than` is a limit, not a prohibition"
        );
    }

    #[test]
    fn required_steps() {
        for line in [
            "Always verify the employee's identity before resetting a password.",
            "Before resetting a password, verify the employee's identity.",
            "Reset a password only after verifying the employee's identity.",
        ] {
            let r = read(line).requirement.expect(line);
            let first = crate::text::terms("verify identity");
            assert!(
                first
                    .iter()
                    .all(|t| r.first.terms.iter().any(|x| x.0 == t.0)),
                "{line}"
            );
            let then = crate::text::terms("reset password");
            assert!(
                then.iter().all(|t| r.then.terms.iter().any(|x| x.0 == t.0)),
                "{line}"
            );
        }
    }
}
