//! Words as the analysis compares them: identifiers split (`issue_refund`,
//! `issueRefund`), lower-cased, stop words dropped and Snowball-stemmed
//! (`refunds` ~ `refund`, `resetting` ~ `reset`); each stem also stands for
//! the concepts of a small table (`escalate` ~ `colleague` ~ `human`,
//! `salary` ~ `earns`), so a paraphrase still meets the line it follows; and
//! numbers read as numbers (`$1,250`, `two`).

use std::collections::HashMap;
use std::sync::OnceLock;

use rust_stemmers::{Algorithm, Stemmer};

/// A word or a concept, interned for the whole process.
pub(crate) type Term = u32;

/// How much a concept match counts against a match of the word itself.
pub(crate) const CONCEPT_WEIGHT: f32 = 0.8;

/// Function words (and the negation words, which the analysis reads
/// separately): they say nothing about which line an action follows.
const STOP: &[&str] = &[
    "a",
    "about",
    "after",
    "again",
    "against",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "been",
    "before",
    "being",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "don",
    "each",
    "either",
    "else",
    "etc",
    "even",
    "ever",
    "every",
    "few",
    "for",
    "from",
    "further",
    "get",
    "got",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "him",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "let",
    "ll",
    "may",
    "me",
    "might",
    "more",
    "most",
    "must",
    "my",
    "myself",
    "need",
    "needs",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "one",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "out",
    "over",
    "own",
    "per",
    "please",
    "re",
    "s",
    "same",
    "shall",
    "she",
    "should",
    "so",
    "some",
    "such",
    "t",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "themself",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "upon",
    "us",
    "use",
    "using",
    "ve",
    "very",
    "via",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "whether",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "within",
    "without",
    "would",
    "yet",
    "you",
    "your",
    "yours",
    "yourself",
    "d",
    "m",
    "never",
    "always",
    "unless",
    "except",
    "cannot",
    "can't",
    "won't",
    "don't",
    "ok",
    "okay",
    "sure",
    "hi",
    "hello",
    "dear",
    "regards",
    "like",
    "make",
    "sure",
    "able",
    "go",
    "going",
    "want",
    "know",
    "see",
    "look",
    "well",
    "way",
    "thing",
    "things",
    "today",
    "right",
    "back",
    "new",
    "anyone",
    "anything",
    "someone",
    "something",
    "everyone",
];

/// Groups of words that name one idea in the domains agents work in
/// (support, HR, code review, IT, payments). Multi-word entries match as
/// consecutive words. Measured on the corpus (`corpus/`, `benches/corpus.rs`).
const CONCEPTS: &[&[&str]] = &[
    &[
        "refund",
        "reimburse",
        "reimbursement",
        "repay",
        "money back",
        "chargeback",
        "credit back",
        "refunded",
    ],
    &[
        "escalate",
        "escalation",
        "transfer",
        "hand over",
        "handoff",
        "hand off",
        "pass",
        "forward",
        "route",
        "connect",
        "human",
        "person",
        "colleague",
        "specialist",
        "representative",
        "live agent",
        "teammate",
        "team member",
    ],
    &[
        "angry",
        "upset",
        "frustrated",
        "furious",
        "annoyed",
        "irate",
        "mad",
        "hostile",
        "abusive",
        "rude",
        "unhappy",
        "livid",
    ],
    &[
        "delete",
        "remove",
        "erase",
        "wipe",
        "purge",
        "deactivate",
        "destroy",
        "close account",
    ],
    &["cancel", "cancellation", "void", "call off"],
    &[
        "password",
        "passcode",
        "passphrase",
        "credentials",
        "login",
        "sign in",
        "log in",
    ],
    &["reset", "unlock", "recover", "restore"],
    &[
        "verify",
        "verification",
        "confirm",
        "authenticate",
        "authentication",
        "identity",
        "identification",
        "validate",
        "prove",
        "proof",
        "security question",
        "mfa",
        "2fa",
    ],
    &[
        "share",
        "disclose",
        "disclosure",
        "reveal",
        "tell",
        "give out",
        "divulge",
        "expose",
        "leak",
        "publish",
        "discuss",
        "provide",
    ],
    &[
        "salary",
        "salaries",
        "pay",
        "compensation",
        "wage",
        "earn",
        "earnings",
        "income",
        "payroll",
        "remuneration",
        "paid",
        "makes",
    ],
    &[
        "confidential",
        "private",
        "secret",
        "sensitive",
        "personal",
        "restricted",
        "privacy",
        "internal",
    ],
    &[
        "approve",
        "approval",
        "accept",
        "lgtm",
        "sign off",
        "authorize",
        "authorise",
        "authorization",
        "consent",
        "greenlight",
        "okay",
    ],
    &[
        "reject",
        "decline",
        "deny",
        "refuse",
        "turn down",
        "request changes",
        "block",
    ],
    &["merge", "land", "squash", "rebase"],
    &[
        "pr",
        "pull request",
        "merge request",
        "mr",
        "patch",
        "changeset",
    ],
    &["test", "tests", "coverage", "unit test", "spec", "specs"],
    &[
        "secret",
        "credential",
        "credentials",
        "api key",
        "token",
        "private key",
        "access key",
        "key",
    ],
    &[
        "ci",
        "pipeline",
        "build",
        "checks",
        "status check",
        "green",
        "passing",
    ],
    &[
        "review",
        "reviewer",
        "reviewers",
        "feedback",
        "comment",
        "critique",
    ],
    &[
        "leave", "vacation", "holiday", "pto", "time off", "absence", "day off", "days off",
    ],
    &["sick", "illness", "ill", "unwell"],
    &[
        "hire",
        "hiring",
        "recruit",
        "recruiting",
        "candidate",
        "applicant",
        "interview",
        "offer",
    ],
    &["grant", "give", "assign", "enable", "provision", "add"],
    &[
        "access",
        "permission",
        "permissions",
        "rights",
        "privilege",
        "privileges",
        "role",
        "admin",
    ],
    &[
        "laptop",
        "computer",
        "device",
        "hardware",
        "equipment",
        "machine",
        "notebook",
        "monitor",
    ],
    &[
        "order", "purchase", "package", "shipment", "parcel", "delivery",
    ],
    &[
        "ship",
        "shipping",
        "deliver",
        "delivered",
        "dispatch",
        "courier",
        "tracking",
    ],
    &[
        "lookup", "look up", "find", "search", "retrieve", "fetch", "query", "pull up", "check",
    ],
    &["greet", "welcome", "hello", "hi", "good morning"],
    &[
        "apologize",
        "apologise",
        "apology",
        "sorry",
        "regret",
        "empathy",
        "empathize",
        "acknowledge",
    ],
    &[
        "card number",
        "credit card",
        "card",
        "cvv",
        "iban",
        "bank account",
    ],
    &["address", "home address", "street", "postcode", "zip"],
    &["email", "e-mail", "mail", "inbox"],
    &[
        "chat",
        "slack",
        "teams",
        "dm",
        "direct message",
        "channel",
        "whatsapp",
    ],
    &["phone", "telephone", "mobile", "call"],
    &[
        "discount",
        "coupon",
        "voucher",
        "promo",
        "promotion",
        "store credit",
    ],
    &[
        "amount", "dollar", "dollars", "usd", "eur", "euro", "euros", "pound", "pounds", "gbp",
        "money", "price", "cost", "fee", "charge", "sum", "total", "value", "fare",
    ],
    &["day", "days", "week", "weeks", "duration"],
    &[
        "urgent",
        "critical",
        "emergency",
        "priority",
        "asap",
        "outage",
        "severity",
        "sev1",
    ],
    &["bug", "defect", "error", "fault", "regression", "crash"],
    &[
        "label",
        "tag",
        "categorize",
        "categorise",
        "classify",
        "triage",
    ],
    &[
        "customer",
        "client",
        "user",
        "shopper",
        "buyer",
        "requester",
    ],
    &[
        "employee",
        "staff",
        "worker",
        "colleague",
        "personnel",
        "team member",
    ],
    &["manager", "supervisor", "lead", "boss", "director", "head"],
    &[
        "polite",
        "courteous",
        "respectful",
        "kind",
        "friendly",
        "warm",
        "empathetic",
        "tone",
        "professional",
    ],
    &[
        "legal",
        "lawyer",
        "law",
        "lawsuit",
        "attorney",
        "litigation",
        "sue",
    ],
    &["medical", "health", "diagnosis", "doctor", "condition"],
    &[
        "policy",
        "handbook",
        "guideline",
        "guidelines",
        "rule",
        "rules",
    ],
    &["wait", "pending", "hold", "later", "queue", "ticket"],
    &[
        "security",
        "vulnerability",
        "exploit",
        "injection",
        "cve",
        "unsafe",
    ],
    &["document", "documentation", "docs", "readme", "changelog"],
    &[
        "licence",
        "license",
        "licence key",
        "license key",
        "product key",
        "activation code",
        "activation",
        "serial",
    ],
    &[
        "payment",
        "pay",
        "paid",
        "payment method",
        "card",
        "bank",
        "way you paid",
    ],
    &[
        "road", "avenue", "lane", "address", "postcode", "street", "house",
    ],
    &[
        "harassment",
        "harass",
        "discrimination",
        "bullying",
        "joke",
        "jokes",
        "offensive",
        "inappropriate",
        "racist",
        "sexist",
        "slur",
    ],
    &[
        "crisis",
        "harm",
        "suicide",
        "suicidal",
        "hopeless",
        "distress",
        "cope",
        "point any",
        "at risk",
    ],
    &[
        "solicitor",
        "legal",
        "lawyer",
        "dispute",
        "chargeback",
        "reverse the payment",
        "court",
    ],
    &[
        "injury", "injured", "hurt", "burn", "burns", "burned", "wound",
    ],
    &[
        "dependency",
        "dependencies",
        "crate",
        "crates",
        "package",
        "library",
        "cargo",
    ],
    &["branch", "branches", "force push"],
    &[
        "first time",
        "newcomer",
        "new contributor",
        "first contribution",
        "thank",
        "thanks",
        "grateful",
        "appreciate",
        "welcome",
    ],
    &[
        "phish",
        "phishing",
        "phished",
        "suspicious",
        "scam",
        "spoof",
    ],
    &["overtime", "payroll", "payslip", "deduction", "tax code"],
    &["outage", "down", "offline", "unreachable", "affected"],
    // Abbreviations engineers write in names and arguments (`orders-prod-db`).
    &["production", "prod"],
    &["database", "databases", "db"],
    &["repository", "repo"],
    &["environment", "env"],
    &["configuration", "config"],
    // What a query does, in SQL's words.
    &["write", "update", "insert", "upsert", "alter", "truncate"],
    &["read", "select"],
];

/// What a word is, worked out once per process.
#[derive(Clone)]
struct Word {
    stem: std::sync::Arc<str>,
    /// The stem's term; none for a stop word.
    term: Option<Term>,
    concepts: std::sync::Arc<[Term]>,
    /// The stem opens a two-word concept.
    pair_start: bool,
}

/// Interned terms and the words already stemmed.
struct State {
    terms: HashMap<String, Term>,
    words: HashMap<String, Word>,
    /// A stem's term -> its WordNet senses.
    senses: HashMap<Term, Senses>,
}

/// Words remembered at most (a flood of distinct words empties the cache, never grows it without bound).
const MAX_WORDS: usize = 200_000;

impl State {
    fn intern(&mut self, s: &str) -> Term {
        if let Some(&t) = self.terms.get(s) {
            return t;
        }
        let t = self.terms.len() as Term;
        self.terms.insert(s.to_string(), t);
        t
    }

    fn word(&mut self, lex: &Lexicon, w: &str) -> Word {
        if let Some(x) = self.words.get(w) {
            return x.clone();
        }
        let base = w.trim_end_matches("'t");
        let stem: String = lex.stem(base);
        let content = !lex.stop.contains(base) && base.len() > 1;
        let term = content.then(|| self.intern(&stem));
        let concepts: std::sync::Arc<[Term]> = if content {
            lex.concepts
                .get(stem.as_str())
                .cloned()
                .unwrap_or_default()
                .into()
        } else {
            std::sync::Arc::from(Vec::new())
        };
        // A word of the concept table is read through it; any other
        // through its WordNet senses.
        if let Some(t) = term
            && concepts.is_empty()
            && !self.senses.contains_key(&t)
        {
            // The table is keyed by the stemmer's own stems.
            let senses: Vec<Term> = related(&lex.stemmer.stem(base))
                .map(|id| self.intern(&format!("#wn{id}")))
                .collect();
            if !senses.is_empty() {
                self.senses.insert(t, senses.into());
            }
        }
        let x = Word {
            pair_start: lex.pair_starts.contains(stem.as_str()),
            stem: stem.into(),
            term,
            concepts,
        };
        if self.words.len() >= MAX_WORDS {
            self.words.clear();
        }
        self.words.insert(w.to_string(), x.clone());
        x
    }
}

struct Lexicon {
    stemmer: Stemmer,
    state: std::sync::Mutex<State>,
    /// First stems of the two-word concepts.
    pair_starts: std::collections::HashSet<String>,
    /// Stem (or two stems joined by a space) -> concept terms.
    concepts: HashMap<String, Vec<Term>>,
    stop: std::collections::HashSet<&'static str>,
}

fn lexicon() -> &'static Lexicon {
    static LEX: OnceLock<Lexicon> = OnceLock::new();
    LEX.get_or_init(|| {
        let stemmer = Stemmer::create(Algorithm::English);
        let mut lex = Lexicon {
            stemmer,
            state: std::sync::Mutex::new(State {
                terms: HashMap::new(),
                words: HashMap::new(),
                senses: HashMap::new(),
            }),
            pair_starts: Default::default(),
            concepts: HashMap::new(),
            stop: STOP.iter().copied().collect(),
        };
        let mut concepts: HashMap<String, Vec<Term>> = HashMap::new();
        for (i, group) in CONCEPTS.iter().enumerate() {
            let concept = lex.intern(&format!("#concept{i}"));
            for phrase in *group {
                let key: Vec<String> = phrase.split(' ').map(|w| lex.stem(w)).collect();
                if key.len() == 2 {
                    lex.pair_starts.insert(key[0].clone());
                }
                let entry = concepts.entry(key.join(" ")).or_default();
                if !entry.contains(&concept) {
                    entry.push(concept);
                }
            }
        }
        lex.concepts = concepts;
        lex
    })
}

/// Words the stemmer joins to others of a different meaning (`production`
/// and `products`, `general` and `generate`), with a stem of their own.
const OWN_STEMS: &[(&str, &str)] = &[
    ("production", "production"),
    ("productions", "production"),
    ("general", "general"),
    ("generally", "general"),
    ("news", "news"),
    ("community", "community"),
    ("communities", "community"),
    ("university", "university"),
    ("universities", "university"),
    ("organ", "organ_"),
    ("organs", "organ_"),
];

impl Lexicon {
    /// A word's stem, as every table and text is read with.
    fn stem(&self, w: &str) -> String {
        match OWN_STEMS.iter().find(|(word, _)| *word == w) {
            Some((_, stem)) => (*stem).to_string(),
            None => self.stemmer.stem(w).into_owned(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn intern(&self, s: &str) -> Term {
        self.state().intern(s)
    }
}

/// The words of a text, split at every non-alphanumeric character and at
/// lower-to-upper case changes, lower-cased; numbers are left out (they are
/// read by [`tokens`]).
pub(crate) fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    let flush = |cur: &mut String, out: &mut Vec<String>| {
        if !cur.is_empty() {
            if !cur.bytes().all(|b| b.is_ascii_digit()) {
                out.push(std::mem::take(cur));
            } else {
                cur.clear();
            }
        }
    };
    for c in text.chars() {
        if c.is_alphanumeric() || c == '\'' {
            if c == '\'' {
                // "don't" stays one word; a quote mark alone is a boundary.
                if cur.is_empty() {
                    continue;
                }
                cur.push(c);
                prev_lower = false;
                continue;
            }
            if c.is_uppercase() && prev_lower {
                flush(&mut cur, &mut out);
            }
            prev_lower = c.is_lowercase();
            cur.extend(c.to_lowercase());
        } else {
            prev_lower = false;
            flush(&mut cur, &mut out);
        }
    }
    flush(&mut cur, &mut out);
    for w in &mut out {
        while w.ends_with('\'') {
            w.pop();
        }
        if let Some(base) = w.strip_suffix("'s") {
            *w = base.to_string();
        }
    }
    out.retain(|w| !w.is_empty());
    out
}

/// A text's terms with their weights: each content word's stem (weight 1)
/// and the concepts it (or it with the next word) stands for
/// ([`CONCEPT_WEIGHT`]). Repeated terms keep their highest weight.
pub(crate) fn terms(text: &str) -> Vec<(Term, f32)> {
    let lex = lexicon();
    let ws = words(text);
    let mut st = lex.state();
    let infos: Vec<Word> = ws.iter().map(|w| st.word(lex, w)).collect();
    let mut out: Vec<(Term, f32)> = Vec::with_capacity(infos.len() * 2);
    let mut add = |t: Term, w: f32| {
        if let Some(e) = out.iter_mut().find(|(x, _)| *x == t) {
            e.1 = e.1.max(w);
        } else {
            out.push((t, w));
        }
    };
    for (i, info) in infos.iter().enumerate() {
        // Pairs first: "money back", "time off" (the second word may be a stop word).
        if info.pair_start
            && let Some(next) = infos.get(i + 1)
            && let Some(cs) = lex.concepts.get(&format!("{} {}", info.stem, next.stem))
        {
            for &c in cs {
                add(c, CONCEPT_WEIGHT);
            }
        }
        let Some(t) = info.term else { continue };
        add(t, 1.0);
        for &c in info.concepts.iter() {
            add(c, CONCEPT_WEIGHT);
        }
    }
    out
}

/// A word's WordNet senses, as terms.
pub(crate) type Senses = std::sync::Arc<[Term]>;

/// The WordNet senses of many terms (those with any that another word
/// shares), with one lock.
pub(crate) fn senses_of<T>(ts: impl Iterator<Item = (Term, T)>) -> Vec<(T, Senses)> {
    let st = lexicon().state();
    ts.filter_map(|(t, x)| st.senses.get(&t).map(|s| (x, s.clone())))
        .collect()
}

/// How much a line's word counts when the action has only a word of the
/// same WordNet sense: a weaker tie than the same stem or a concept of the
/// table, which was chosen for the domain.
pub(crate) const RELATED_WEIGHT: f32 = 0.3;

/// The senses of a stem in WordNet 3.0, as numbers that two related stems
/// share (`data/wordnet-related.txt`, made by `data/wordnet.py`): the common
/// senses of each word (its first three, among those seen in the SemCor
/// corpus), their narrow hypernyms, similar adjectives and derived forms.
/// `house` ~ `home`, `particular` ~ `specific`, `trip` ~ `commuting`.
fn related(stem: &str) -> impl Iterator<Item = &'static str> {
    static TABLE: &str = include_str!("../data/wordnet-related.txt");
    static INDEX: OnceLock<Vec<(&'static str, &'static str)>> = OnceLock::new();
    let index = INDEX.get_or_init(|| TABLE.lines().filter_map(|l| l.split_once(' ')).collect());
    index
        .binary_search_by(|(k, _)| (*k).cmp(stem))
        .ok()
        .map(|i| index[i].1)
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
}

/// Words of a text and what each stands for, one group per content word:
/// its stem, then its concepts (so a word counts once, matched either way).
#[derive(Debug, Clone, Default)]
pub(crate) struct Words {
    pub(crate) terms: Vec<(Term, f32)>,
    pub(crate) groups: Vec<Vec<Term>>,
    /// Each group's WordNet senses ([`senses`]), read once.
    pub(crate) senses: Vec<Option<Senses>>,
}

impl Words {
    pub(crate) fn of(text: &str) -> Words {
        let lex = lexicon();
        let mut groups = Vec::new();
        let mut senses = Vec::new();
        {
            let mut st = lex.state();
            for w in words(text) {
                let info = st.word(lex, &w);
                if let Some(t) = info.term {
                    let mut g = vec![t];
                    g.extend(info.concepts.iter());
                    groups.push(g);
                    senses.push(st.senses.get(&t).cloned());
                }
            }
        }
        Words {
            terms: terms(text),
            groups,
            senses,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// These words and `other`'s.
    pub(crate) fn with(&self, other: &Words) -> Words {
        let mut w = self.clone();
        w.terms.extend(other.terms.iter().copied());
        w.groups.extend(other.groups.iter().cloned());
        w.senses.extend(other.senses.iter().cloned());
        w
    }
}

/// Words of saying: what a reply does by being a reply.
const SAYING: &[&str] = &[
    "include", "reply", "replies", "respond", "response", "answer", "mention", "repeat", "say",
    "tell", "quote", "share", "post", "write", "send", "echo", "show", "display", "put", "give",
    "disclose", "reveal", "state", "list",
];

/// Whether a term is the stem of a word of saying.
pub(crate) fn is_saying(t: Term) -> bool {
    static SET: OnceLock<std::collections::HashSet<Term>> = OnceLock::new();
    SET.get_or_init(|| {
        let lex = lexicon();
        SAYING.iter().map(|w| lex.intern(&lex.stem(w))).collect()
    })
    .contains(&t)
}

/// The words of an identifier as parts: each one's stem and concepts,
/// two words that make one concept joined (`pull_request`).
pub(crate) fn parts(name: &str) -> Vec<(Term, Vec<Term>)> {
    let lex = lexicon();
    let ws: Vec<String> = words(name)
        .into_iter()
        .filter(|w| !lex.stop.contains(w.as_str()) && w.len() > 1)
        .collect();
    let stems: Vec<String> = {
        let mut st = lex.state();
        ws.iter()
            .map(|w| st.word(lex, w).stem.to_string())
            .collect()
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < stems.len() {
        if i + 1 < stems.len()
            && let Some(cs) = lex.concepts.get(&format!("{} {}", stems[i], stems[i + 1]))
        {
            out.push((cs[0], cs.clone()));
            i += 2;
            continue;
        }
        let stem = lex.intern(&stems[i]);
        let mut all = vec![stem];
        if let Some(cs) = lex.concepts.get(stems[i].as_str()) {
            all.extend(cs);
        }
        out.push((stem, all));
        i += 1;
    }
    out
}

/// The numbers a text states (digits only), each with the stem of the word after it.
pub(crate) fn numbers_with_units(text: &str) -> Vec<(f64, Option<Term>)> {
    let lex = lexicon();
    let toks = tokens(text);
    toks.iter()
        .enumerate()
        .filter_map(|(k, t)| match t {
            Token::Number(v) => Some((
                *v,
                match toks.get(k + 1) {
                    Some(Token::Word(w)) => {
                        let stem = lex.stem(w);
                        Some(lex.intern(&stem))
                    }
                    _ => None,
                },
            )),
            _ => None,
        })
        .collect()
}

/// The counts a text states: its numbers, and number words from two up
/// ("moved twice", "two travel bundles"; "one" is too often no count),
/// each with the terms of the words around it in its clause (six each
/// side): what it counts.
pub(crate) fn counts_stated(text: &str) -> Vec<(f64, Vec<Term>)> {
    let toks = tokens(text);
    let near = |k: usize| {
        let mut out = Vec::new();
        let mut take = |t: &Token| match t {
            Token::Word(w) => {
                out.extend(terms(w).into_iter().map(|(t, _)| t));
                true
            }
            Token::Stop => false,
            _ => true,
        };
        for t in toks[..k].iter().rev().take(6) {
            if !take(t) {
                break;
            }
        }
        for t in toks[k + 1..].iter().take(6) {
            if !take(t) {
                break;
            }
        }
        out
    };
    toks.iter()
        .enumerate()
        .filter_map(|(k, t)| match t {
            Token::Number(v) => Some((*v, near(k))),
            Token::NumberWord(v) if *v >= 2.0 => Some((*v, near(k))),
            _ => None,
        })
        .collect()
}

/// Number words up to the ones limits are written with.
fn number_word(w: &str) -> Option<f64> {
    Some(match w {
        "zero" | "no" => 0.0,
        "one" | "a single" => 1.0,
        "two" | "twice" => 2.0,
        "three" => 3.0,
        "four" => 4.0,
        "five" => 5.0,
        "six" => 6.0,
        "seven" => 7.0,
        "eight" => 8.0,
        "nine" => 9.0,
        "ten" => 10.0,
        "eleven" => 11.0,
        "twelve" => 12.0,
        "fifteen" => 15.0,
        "twenty" => 20.0,
        "thirty" => 30.0,
        "fifty" => 50.0,
        "hundred" => 100.0,
        _ => return None,
    })
}

/// The text as tokens for phrase reading: words and numbers in order,
/// lower-cased; `$1,250.50` is one number, `k`/`m` after a number scale it.
pub(crate) fn tokens(text: &str) -> Vec<Token> {
    tokens_marked(text).0
}

/// The money concept (`amount`, `price`, `fee`, `dollars` ...), as terms.
pub(crate) fn money_concepts() -> &'static [Term] {
    static MONEY: OnceLock<Vec<Term>> = OnceLock::new();
    MONEY.get_or_init(|| {
        terms("amount")
            .into_iter()
            .filter(|(_, w)| *w < 1.0)
            .map(|(t, _)| t)
            .collect()
    })
}

/// Whether a term is a word of money itself (`amount`, `total`, `price`):
/// a stem of the concept table's money group.
pub(crate) fn terms_of_money(t: Term) -> bool {
    static WORDS: OnceLock<Vec<Term>> = OnceLock::new();
    WORDS
        .get_or_init(|| {
            let group = CONCEPTS
                .iter()
                .find(|g| g.contains(&"amount"))
                .map(|g| g.join(" "))
                .unwrap_or_default();
            terms(&group)
                .into_iter()
                .filter(|(_, w)| *w >= 1.0)
                .map(|(t, _)| t)
                .collect()
        })
        .contains(&t)
}

/// [`tokens`], and for each whether it is a number written with a currency
/// sign (`$100`, `£30`).
pub(crate) fn tokens_marked(text: &str) -> (Vec<Token>, Vec<bool>) {
    let mut money: Vec<bool> = Vec::new();
    let mut out = Vec::new();
    let b: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() {
            let mut s = String::new();
            let mut j = i;
            while j < b.len()
                && (b[j].is_ascii_digit()
                    || (b[j] == ',' && j + 3 < b.len() + 1 && next_three_digits(&b, j + 1))
                    || (b[j] == '.' && j + 1 < b.len() && b[j + 1].is_ascii_digit()))
            {
                if b[j] != ',' {
                    s.push(b[j]);
                }
                j += 1;
            }
            let mut value = s.parse::<f64>().unwrap_or(f64::NAN);
            // 5k, 2.5m: scaled; 5kg or 5km are words of their own.
            if j < b.len()
                && matches!(b[j], 'k' | 'K' | 'm' | 'M')
                && (j + 1 == b.len() || !b[j + 1].is_alphanumeric())
            {
                value *= if matches!(b[j], 'k' | 'K') { 1e3 } else { 1e6 };
                j += 1;
            }
            if value.is_finite() {
                out.push(Token::Number(value));
                // "£30": the sign is the unit.
                money.resize(out.len() - 1, false);
                money.push(matches!(
                    i.checked_sub(1).map(|p| b[p]),
                    Some('$' | '£' | '€')
                ));
            }
            i = j;
        } else if c.is_alphabetic() {
            let mut j = i;
            let mut s = String::new();
            while j < b.len() && (b[j].is_alphanumeric() || b[j] == '\'' || b[j] == '_') {
                s.extend(b[j].to_lowercase());
                j += 1;
            }
            match number_word(&s) {
                Some(v) if s != "no" && s != "a single" => out.push(Token::NumberWord(v)),
                _ => out.push(Token::Word(s)),
            }
            i = j;
        } else {
            if matches!(c, '.' | ';' | '!' | '?' | ':') {
                out.push(Token::Stop);
            } else if c == ',' {
                out.push(Token::Comma);
            }
            i += 1;
        }
    }
    money.resize(out.len(), false);
    (out, money)
}

fn next_three_digits(b: &[char], from: usize) -> bool {
    from + 3 <= b.len()
        && b[from..from + 3].iter().all(char::is_ascii_digit)
        && (from + 3 == b.len() || !b[from + 3].is_ascii_digit())
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    Word(String),
    Number(f64),
    /// A number written as a word (`two`).
    NumberWord(f64),
    /// The end of a sentence or clause (`.`, `;`, `:`, `!`, `?`).
    Stop,
    Comma,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(text: &str, other: &str) -> bool {
        let a = terms(text);
        terms(other)
            .iter()
            .any(|(t, _)| a.iter().any(|(x, _)| x == t))
    }

    #[test]
    fn identifiers_split_and_stem_like_the_text() {
        assert_eq!(words("issue_refund"), ["issue", "refund"]);
        assert_eq!(
            words("issueRefund(orderId)"),
            ["issue", "refund", "order", "id"]
        );
        let a: Vec<Term> = terms("issue_refund").iter().map(|t| t.0).collect();
        let b: Vec<Term> = terms("You may issue refunds").iter().map(|t| t.0).collect();
        assert!(a.iter().all(|t| b.contains(t)), "{a:?} {b:?}");
    }

    #[test]
    fn words_of_other_meanings_keep_their_own_stems() {
        for (a, b) in [
            ("products", "production"),
            ("generate", "general"),
            ("new", "news"),
            ("communication", "community"),
            ("universe", "university"),
            ("organization", "organs"),
        ] {
            assert!(!has(a, b), "{a} ~ {b}");
        }
        assert!(has("production", "productions"));
        // A word with its own stem keeps its WordNet senses.
        let senses = |w: &str| Words::of(w).senses[0].clone().expect("senses");
        let (a, b) = (senses("community"), senses("neighborhood"));
        assert!(a.iter().any(|t| b.contains(t)));
        assert!(has("products", "product"));
    }

    #[test]
    fn concepts_meet_paraphrases() {
        assert!(has(
            "Escalate angry customers to a human agent.",
            "I passed you to a colleague"
        ));
        assert!(has(
            "Do not share salary figures",
            "I can't tell you what Priya earns"
        ));
        assert!(has("Give customers their money back", "refund"));
    }

    #[test]
    fn numbers_are_read_with_their_forms() {
        let n: Vec<f64> = tokens("up to $1,250.50 or 5k, at most two, 3 days")
            .into_iter()
            .filter_map(|t| match t {
                Token::Number(v) | Token::NumberWord(v) => Some(v),
                _ => None,
            })
            .collect();
        assert_eq!(n, [1250.5, 5000.0, 2.0, 3.0]);
    }
}
