//! A direct serde deserializer over serde-saphyr's own event parser, for plain
//! data: mappings, sequences and scalars with no anchors, aliases or tags.
//!
//! It exists for speed (a 10,000-case eval suite) and it is deliberately
//! conservative: it accepts a document only where the answer cannot differ from
//! what [`super::from_str`] gives. A plain scalar is resolved as YAML 1.2 core
//! (null, `true`/`false`, decimal integers and simple decimals) or, when it
//! starts with a letter, kept as a string; anything else that could be typed
//! (`0x1F`, `.inf`, `1e3`, `2026-01-01`, `+1`, `007`), any anchor, alias, tag,
//! duplicate key or budget concern makes it give up, and the caller parses the
//! whole document the normal way. Giving up is never an error a user sees.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use granit_parser::{Event, Parser, ScalarStyle, StrInput};
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// What a successful parse cost, so the caller can hold the sum of several
/// pieces to the budget of one whole document.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Cost {
    pub nodes: usize,
    pub events: usize,
    pub scalar_bytes: usize,
    pub depth: usize,
}

/// Parses `text`, a document that is one list, item by item into `I`, and
/// passes each with its index to `f`; `None` when the fast path cannot vouch
/// for the result.
pub(super) fn list<I: DeserializeOwned, O>(
    text: &str,
    max_depth: usize,
    capacity: usize,
    mut f: impl FnMut(usize, I) -> O,
) -> Option<(Vec<O>, Cost)> {
    let mut de = Events {
        parser: Parser::new_from_str_with_options(text, parser_options()),
        peeked: None,
        depth: 0,
        max_depth,
        cost: Cost::default(),
    };
    if !matches!(de.next().ok()?, Event::StreamStart)
        || !matches!(de.next().ok()?, Event::DocumentStart(..))
        || !matches!(de.next().ok()?, Event::SequenceStart(_, 0, None))
    {
        return None;
    }
    de.enter().ok()?;
    let mut out = Vec::with_capacity(capacity);
    while !matches!(de.peek().ok()?, Event::SequenceEnd) {
        let item = I::deserialize(&mut de).ok()?;
        out.push(f(out.len(), item));
    }
    if !matches!(de.next().ok()?, Event::SequenceEnd)
        || !matches!(de.next().ok()?, Event::DocumentEnd)
        || !matches!(de.next().ok()?, Event::StreamEnd)
    {
        return None;
    }
    Some((out, de.cost))
}

/// What a document with no anchors, aliases or tags costs the budget;
/// `None` for anything else (or anything that does not parse).
pub(super) fn plain_cost(text: &str) -> Option<Cost> {
    let mut cost = Cost::default();
    let mut depth = 0usize;
    for event in Parser::new_from_str_with_options(text, parser_options()) {
        let (event, _) = event.ok()?;
        cost.events += 1;
        match event {
            Event::Scalar(value, _, 0, None) => {
                cost.nodes += 1;
                cost.scalar_bytes += value.len();
            }
            Event::SequenceStart(_, 0, None) | Event::MappingStart(_, 0, None) => {
                cost.nodes += 1;
                depth += 1;
                cost.depth = cost.depth.max(depth);
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(..)
            | Event::DocumentEnd => {}
            _ => return None,
        }
    }
    Some(cost)
}

/// The parser options serde-saphyr derives from our budget.
fn parser_options() -> granit_parser::Options {
    let budget = super::budget();
    granit_parser::options! {
        simple_key_max_lookahead: budget.simple_key_max_lookahead,
        flow_nesting_limit: budget.flow_nesting_limit,
        block_nesting_limit: granit_parser::Options::default()
            .block_nesting_limit
            .max(budget.max_depth.saturating_add(1)),
        emit_comments: false,
    }
}

/// The only error: "not on the fast path".
#[derive(Debug)]
pub(super) struct GiveUp;

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("outside the fast path")
    }
}

impl std::error::Error for GiveUp {}

impl de::Error for GiveUp {
    fn custom<M: fmt::Display>(_msg: M) -> Self {
        GiveUp
    }
}

struct Events<'a> {
    parser: Parser<'a, StrInput<'a>>,
    peeked: Option<Event<'a>>,
    depth: usize,
    max_depth: usize,
    cost: Cost,
}

/// A plain scalar, resolved the way serde-saphyr resolves it for an untyped
/// value with YAML 1.2 booleans, when that resolution is unambiguous.
enum Plain {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str,
}

fn resolve_plain(s: &str) -> Option<Plain> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Plain::Null),
        "true" | "True" | "TRUE" => return Some(Plain::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Plain::Bool(false)),
        _ => {}
    }
    let first = *s.as_bytes().first()?;
    if first.is_ascii_alphabetic() || first == b'_' || first >= 0x80 {
        return Some(Plain::Str);
    }
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int_part, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int_part) || (int_part.len() > 1 && int_part.starts_with('0')) {
        return None;
    }
    match frac {
        None if negative => {
            if int_part == "0" {
                return None;
            }
            s.parse().ok().map(Plain::I64)
        }
        None => s.parse().ok().map(Plain::U64),
        Some(f) if all_digits(f) => s
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(Plain::F64),
        Some(_) => None,
    }
}

fn is_null(ev: &Event<'_>) -> bool {
    matches!(ev, Event::Scalar(s, ScalarStyle::Plain, 0, None)
        if matches!(s.as_ref(), "" | "~" | "null" | "Null" | "NULL"))
}

impl<'a> Events<'a> {
    fn pull(&mut self) -> Result<Event<'a>, GiveUp> {
        let (event, _span) = self.parser.next().ok_or(GiveUp)?.map_err(|_| GiveUp)?;
        self.cost.events += 1;
        Ok(event)
    }

    fn next(&mut self) -> Result<Event<'a>, GiveUp> {
        match self.peeked.take() {
            Some(event) => Ok(event),
            None => self.pull(),
        }
    }

    fn peek(&mut self) -> Result<&Event<'a>, GiveUp> {
        if self.peeked.is_none() {
            self.peeked = Some(self.pull()?);
        }
        self.peeked.as_ref().ok_or(GiveUp)
    }

    /// The next event as a scalar with no anchor and no tag, counted.
    fn scalar(&mut self) -> Result<(Cow<'a, str>, ScalarStyle), GiveUp> {
        match self.next()? {
            Event::Scalar(value, style, 0, None) => {
                self.cost.nodes += 1;
                self.cost.scalar_bytes += value.len();
                Ok((value, style))
            }
            _ => Err(GiveUp),
        }
    }

    fn enter(&mut self) -> Result<(), GiveUp> {
        self.cost.nodes += 1;
        self.depth += 1;
        self.cost.depth = self.cost.depth.max(self.depth);
        if self.depth > self.max_depth {
            return Err(GiveUp);
        }
        Ok(())
    }
}

fn visit_cow<'de, V: Visitor<'de>>(value: Cow<'de, str>, visitor: V) -> Result<V::Value, GiveUp> {
    match value {
        Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
        Cow::Owned(s) => visitor.visit_string(s),
    }
}

impl<'de> de::Deserializer<'de> for &mut Events<'de> {
    type Error = GiveUp;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        match self.next()? {
            Event::Scalar(value, style, 0, None) => {
                self.cost.nodes += 1;
                self.cost.scalar_bytes += value.len();
                if style != ScalarStyle::Plain {
                    return visit_cow(value, visitor);
                }
                match resolve_plain(&value).ok_or(GiveUp)? {
                    Plain::Null => visitor.visit_unit(),
                    Plain::Bool(b) => visitor.visit_bool(b),
                    Plain::U64(n) => visitor.visit_u64(n),
                    Plain::I64(n) => visitor.visit_i64(n),
                    Plain::F64(f) => visitor.visit_f64(f),
                    Plain::Str => visit_cow(value, visitor),
                }
            }
            Event::SequenceStart(_, 0, None) => {
                self.enter()?;
                let mut access = Seq {
                    de: self,
                    done: false,
                };
                let value = visitor.visit_seq(&mut access)?;
                if !access.done {
                    return Err(GiveUp);
                }
                self.depth -= 1;
                Ok(value)
            }
            Event::MappingStart(_, 0, None) => {
                self.enter()?;
                let mut access = Map {
                    de: self,
                    done: false,
                    keys: [const { None }; SCAN_KEYS],
                    seen: 0,
                    many_keys: HashSet::new(),
                };
                let value = visitor.visit_map(&mut access)?;
                if !access.done {
                    return Err(GiveUp);
                }
                self.depth -= 1;
                Ok(value)
            }
            _ => Err(GiveUp),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        if is_null(self.peek()?) {
            self.scalar()?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    /// A struct only from a mapping (serde would also take a sequence, which
    /// the slow path may not).
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, GiveUp> {
        if !matches!(self.peek()?, Event::MappingStart(..)) {
            return Err(GiveUp);
        }
        self.deserialize_any(visitor)
    }

    /// Field names only from strings, never from numbers (serde would map
    /// `0:` to the first field).
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        let (value, style) = self.scalar()?;
        if style == ScalarStyle::Plain && !matches!(resolve_plain(&value), Some(Plain::Str)) {
            return Err(GiveUp);
        }
        visit_cow(value, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, GiveUp> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, GiveUp> {
        Err(GiveUp)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map ignored_any
    }
}

struct Seq<'s, 'de> {
    de: &'s mut Events<'de>,
    done: bool,
}

impl<'de> SeqAccess<'de> for &mut Seq<'_, 'de> {
    type Error = GiveUp;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, GiveUp> {
        if self.done {
            return Ok(None);
        }
        if matches!(self.de.peek()?, Event::SequenceEnd) {
            self.de.next()?;
            self.done = true;
            return Ok(None);
        }
        seed.deserialize(&mut *self.de).map(Some)
    }
}

/// Small mappings check duplicate keys by scanning; large ones switch to a set.
const SCAN_KEYS: usize = 16;

struct Map<'s, 'de> {
    de: &'s mut Events<'de>,
    done: bool,
    keys: [Option<Cow<'de, str>>; SCAN_KEYS],
    seen: usize,
    many_keys: HashSet<Cow<'de, str>>,
}

impl<'de> MapAccess<'de> for &mut Map<'_, 'de> {
    type Error = GiveUp;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, GiveUp> {
        if self.done {
            return Ok(None);
        }
        let key = match self.de.peek()? {
            Event::MappingEnd => {
                self.de.next()?;
                self.done = true;
                return Ok(None);
            }
            Event::Scalar(text, _, 0, None) => text.clone(),
            _ => return Err(GiveUp),
        };
        // A duplicate key is an error on the slow path; let it say so.
        if self.seen < SCAN_KEYS {
            if self.keys[..self.seen].iter().flatten().any(|k| *k == key) {
                return Err(GiveUp);
            }
            self.keys[self.seen] = Some(key);
        } else {
            if self.many_keys.is_empty() {
                self.many_keys.extend(self.keys.iter().flatten().cloned());
            }
            if !self.many_keys.insert(key) {
                return Err(GiveUp);
            }
        }
        self.seen += 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, GiveUp> {
        seed.deserialize(&mut *self.de)
    }
}
