//! The two databases behind the trace store, behind one small interface:
//! run a statement, stream a query's rows, hold a transaction. Statements
//! are written once, in the SQL both understand, and spelt per dialect.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use postgres::types::{ToSql, Type};

use crate::{TraceError, redact};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// `sql` in this dialect: placeholders `?N` become `$N` for
    /// PostgreSQL, and `{least}` / `{greatest}` the two-argument minimum and
    /// maximum each has.
    pub(crate) fn sql(self, sql: &str) -> String {
        match self {
            Dialect::Sqlite => sql
                .replace("{least}", "MIN")
                .replace("{greatest}", "MAX")
                .replace("{instr}", "instr")
                .replace("{bytes}", "BLOB")
                // A table clustered by its key: one B-tree, not a table and
                // an index beside it.
                .replace("{without_rowid}", " WITHOUT ROWID"),
            Dialect::Postgres => {
                let sql = sql
                    .replace("{least}", "LEAST")
                    .replace("{greatest}", "GREATEST")
                    .replace("{instr}", "strpos")
                    .replace("{bytes}", "BYTEA")
                    .replace("{without_rowid}", "");
                let mut out = String::with_capacity(sql.len());
                let mut chars = sql.chars().peekable();
                while let Some(c) = chars.next() {
                    if c == '?' && chars.peek().is_some_and(|n| n.is_ascii_digit()) {
                        out.push('$');
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }
}

/// A statement's parameter, typed even when null (PostgreSQL checks), and
/// borrowing its text where it can (a batch binds millions of them).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param<'a> {
    Text(Option<Cow<'a, str>>),
    Int(Option<i64>),
    Float(Option<f64>),
    /// A trace or span id's bytes (at most 16), without an allocation.
    Id(Option<([u8; 16], u8)>),
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl Param<'_> {
    /// A trace or span id: stored as its bytes (half the size of its hex,
    /// in every row and index that holds it). Ids are checked hex of 16 or
    /// 32 digits by the time they get here; anything else (which cannot
    /// match a stored id) becomes the empty id.
    pub(crate) fn id(hex_id: &str) -> Param<'static> {
        let h = hex_id.as_bytes();
        let mut out = [0u8; 16];
        if !h.len().is_multiple_of(2) || h.len() > 32 {
            return Param::Id(Some((out, 0)));
        }
        for (i, pair) in h.chunks_exact(2).enumerate() {
            match (nibble(pair[0]), nibble(pair[1])) {
                (Some(a), Some(b)) => out[i] = (a << 4) | b,
                _ => return Param::Id(Some((out, 0))),
            }
        }
        Param::Id(Some((out, (h.len() / 2) as u8)))
    }

    pub(crate) fn opt_id(hex_id: Option<&str>) -> Param<'static> {
        match hex_id {
            Some(h) => Param::id(h),
            None => Param::Id(None),
        }
    }

    fn id_bytes(v: &Option<([u8; 16], u8)>) -> Option<&[u8]> {
        v.as_ref().map(|(b, n)| &b[..usize::from(*n)])
    }
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(s: &'a str) -> Param<'a> {
        Param::Text(Some(Cow::Borrowed(s)))
    }
}
impl From<String> for Param<'_> {
    fn from(s: String) -> Self {
        Param::Text(Some(Cow::Owned(s)))
    }
}
impl<'a> From<&'a String> for Param<'a> {
    fn from(s: &'a String) -> Param<'a> {
        Param::Text(Some(Cow::Borrowed(s)))
    }
}
impl<'a> From<&'a Option<String>> for Param<'a> {
    fn from(s: &'a Option<String>) -> Param<'a> {
        Param::Text(s.as_deref().map(Cow::Borrowed))
    }
}
impl From<Option<String>> for Param<'_> {
    fn from(s: Option<String>) -> Self {
        Param::Text(s.map(Cow::Owned))
    }
}
impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Param::Int(Some(v))
    }
}
impl From<Option<i64>> for Param<'_> {
    fn from(v: Option<i64>) -> Self {
        Param::Int(v)
    }
}
impl From<Option<f64>> for Param<'_> {
    fn from(v: Option<f64>) -> Self {
        Param::Float(v)
    }
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Param::Text(Some(v)) => Ok(rusqlite::types::ToSqlOutput::Borrowed(
                rusqlite::types::ValueRef::Text(v.as_bytes()),
            )),
            Param::Text(None) => Ok(rusqlite::types::ToSqlOutput::Owned(
                rusqlite::types::Value::Null,
            )),
            Param::Int(v) => rusqlite::ToSql::to_sql(v),
            Param::Float(v) => rusqlite::ToSql::to_sql(v),
            Param::Id(v) => Ok(match Param::id_bytes(v) {
                Some(b) => {
                    rusqlite::types::ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Blob(b))
                }
                None => rusqlite::types::ToSqlOutput::Owned(rusqlite::types::Value::Null),
            }),
        }
    }
}

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Text(v) => v.as_deref().to_sql(ty, out),
            Param::Int(v) => v.to_sql(ty, out),
            Param::Float(v) => v.to_sql(ty, out),
            Param::Id(v) => Param::id_bytes(v).to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <String as ToSql>::accepts(ty)
            || <i64 as ToSql>::accepts(ty)
            || <f64 as ToSql>::accepts(ty)
            || <&[u8] as ToSql>::accepts(ty)
    }

    // Each value is checked against the column by its own type.
    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Text(v) => v.as_deref().to_sql_checked(ty, out),
            Param::Int(v) => v.to_sql_checked(ty, out),
            Param::Float(v) => v.to_sql_checked(ty, out),
            Param::Id(v) => Param::id_bytes(v).to_sql_checked(ty, out),
        }
    }
}

/// A result row of either database.
pub(crate) trait Row {
    fn text(&self, i: usize) -> Result<Option<String>, TraceError>;
    fn int(&self, i: usize) -> Result<Option<i64>, TraceError>;
    fn float(&self, i: usize) -> Result<Option<f64>, TraceError>;
    fn bytes(&self, i: usize) -> Result<Option<Vec<u8>>, TraceError>;

    /// An id stored as bytes, as lowercase hex.
    fn opt_id(&self, i: usize) -> Result<Option<String>, TraceError> {
        Ok(self.bytes(i)?.map(hex::encode))
    }

    fn id(&self, i: usize) -> Result<String, TraceError> {
        Ok(self.opt_id(i)?.unwrap_or_default())
    }

    fn int0(&self, i: usize) -> Result<i64, TraceError> {
        Ok(self.int(i)?.unwrap_or(0))
    }

    fn text0(&self, i: usize) -> Result<String, TraceError> {
        Ok(self.text(i)?.unwrap_or_default())
    }
}

fn bad_row(e: impl std::fmt::Display) -> TraceError {
    TraceError::Store(format!("returned a value of an unexpected type: {e}"))
}

impl Row for rusqlite::Row<'_> {
    fn text(&self, i: usize) -> Result<Option<String>, TraceError> {
        self.get(i).map_err(bad_row)
    }
    fn bytes(&self, i: usize) -> Result<Option<Vec<u8>>, TraceError> {
        self.get(i).map_err(bad_row)
    }
    fn int(&self, i: usize) -> Result<Option<i64>, TraceError> {
        self.get(i).map_err(bad_row)
    }
    fn float(&self, i: usize) -> Result<Option<f64>, TraceError> {
        self.get(i).map_err(bad_row)
    }
}

impl Row for postgres::Row {
    fn text(&self, i: usize) -> Result<Option<String>, TraceError> {
        self.try_get(i).map_err(bad_row)
    }
    fn bytes(&self, i: usize) -> Result<Option<Vec<u8>>, TraceError> {
        self.try_get(i).map_err(bad_row)
    }
    fn int(&self, i: usize) -> Result<Option<i64>, TraceError> {
        self.try_get(i).map_err(bad_row)
    }
    fn float(&self, i: usize) -> Result<Option<f64>, TraceError> {
        self.try_get(i).map_err(bad_row)
    }
}

/// An open database.
pub(crate) enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(Box<postgres::Client>),
}

pub(crate) fn sqlite_err(label: &str, e: rusqlite::Error) -> TraceError {
    TraceError::Store(format!("{label}: {e}"))
}

/// A PostgreSQL error, said without anything of the URL.
pub(crate) fn pg_err(label: &str, e: postgres::Error) -> TraceError {
    let detail = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    };
    // Closed, never reached, shut down (class 57) or a broken connection (08).
    let gone = e.is_closed()
        || e.as_db_error().is_none_or(|db| {
            let c = db.code().code();
            c.starts_with("57") || c.starts_with("08")
        });
    TraceError::Store(format!(
        "{label}: {}{}",
        redact::text(&detail),
        if gone {
            "; is the PostgreSQL server running and reachable?"
        } else {
            ""
        }
    ))
}

/// Whether PGPASSWORD may go to the database at `url`: one the environment
/// names, or one whose every host is this machine.
fn trusts_with_password(url: &str, cfg: &postgres::Config, env: Option<&str>) -> bool {
    env.is_some_and(|e| e.trim() == url.trim())
        || cfg.get_hosts().iter().all(|h| match h {
            postgres::config::Host::Tcp(name) => is_loopback(name),
            #[cfg(unix)]
            postgres::config::Host::Unix(_) => true,
        })
}

/// Whether a host name is this machine.
fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Connects to PostgreSQL: the password from the URL (only in
/// RELEASEOPS_TRACES_DATABASE), else PGPASSWORD (sent only to a database
/// RELEASEOPS_TRACES_DATABASE names or one on this machine); the user from
/// the URL, else PGUSER, else USER; ten seconds to connect unless the URL
/// says.
pub(crate) fn connect_postgres(url: &str, label: &str) -> Result<postgres::Client, TraceError> {
    let mut cfg: postgres::Config = url.parse().map_err(|e: postgres::Error| {
        TraceError::Store(format!(
            "{label}: not a PostgreSQL URL ({}); write postgres://USER@HOST:PORT/DATABASE",
            redact::text(&e.to_string())
        ))
    })?;
    // config.yaml is anyone's who can commit: PGPASSWORD goes only to a
    // database this machine names (RELEASEOPS_TRACES_DATABASE) or to one on
    // this machine, never to a host a committed file points at.
    let trusted = trusts_with_password(
        url,
        &cfg,
        std::env::var(crate::DATABASE_ENV).ok().as_deref(),
    );
    let withheld = cfg.get_password().is_none() && !trusted && std::env::var("PGPASSWORD").is_ok();
    if cfg.get_password().is_none()
        && trusted
        && let Ok(p) = std::env::var("PGPASSWORD")
    {
        cfg.password(p);
    }
    if cfg.get_user().is_none() {
        let user = std::env::var("PGUSER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "postgres".into());
        cfg.user(&user);
    }
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(Duration::from_secs(10));
    }
    cfg.keepalives(true)
        .keepalives_idle(Duration::from_secs(30))
        .application_name("releaseops");
    cfg.connect(postgres::NoTls).map_err(|e| match pg_err(label, e) {
        TraceError::Store(m) if withheld => TraceError::Store(format!(
            "{m}; PGPASSWORD was not sent: the host comes from the committed config.yaml, so export RELEASEOPS_TRACES_DATABASE with this URL to trust it"
        )),
        other => other,
    })
}

impl Conn {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
        }
    }

    pub(crate) fn batch(&mut self, label: &str, sql: &str) -> Result<(), TraceError> {
        match self {
            Conn::Sqlite(c) => c.execute_batch(sql).map_err(|e| sqlite_err(label, e)),
            Conn::Postgres(c) => c.batch_execute(sql).map_err(|e| pg_err(label, e)),
        }
    }

    pub(crate) fn execute(
        &mut self,
        label: &str,
        sql: &str,
        params: &[Param],
    ) -> Result<u64, TraceError> {
        let sql = self.dialect().sql(sql);
        match self {
            Conn::Sqlite(c) => c
                .prepare_cached(&sql)
                .and_then(|mut s| s.execute(rusqlite::params_from_iter(params)))
                .map(|n| n as u64)
                .map_err(|e| sqlite_err(label, e)),
            Conn::Postgres(c) => {
                let refs: Vec<&(dyn ToSql + Sync)> =
                    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                c.execute(sql.as_str(), &refs).map_err(|e| pg_err(label, e))
            }
        }
    }

    /// Runs a query, handing each row to `f` as it arrives.
    pub(crate) fn query(
        &mut self,
        label: &str,
        sql: &str,
        params: &[Param],
        f: &mut dyn FnMut(&dyn Row) -> Result<(), TraceError>,
    ) -> Result<(), TraceError> {
        let sql = self.dialect().sql(sql);
        match self {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(&sql).map_err(|e| sqlite_err(label, e))?;
                let mut rows = stmt
                    .query(rusqlite::params_from_iter(params))
                    .map_err(|e| sqlite_err(label, e))?;
                while let Some(r) = rows.next().map_err(|e| sqlite_err(label, e))? {
                    f(r)?;
                }
                Ok(())
            }
            Conn::Postgres(c) => {
                use postgres::fallible_iterator::FallibleIterator;
                let mut rows = c
                    .query_raw(sql.as_str(), params.iter())
                    .map_err(|e| pg_err(label, e))?;
                while let Some(r) = rows.next().map_err(|e| pg_err(label, e))? {
                    f(&r)?;
                }
                Ok(())
            }
        }
    }

    pub(crate) fn transaction(&mut self, label: &str) -> Result<Tx<'_>, TraceError> {
        match self {
            Conn::Sqlite(c) => c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map(|t| Tx::Sqlite(t, HashMap::new()))
                .map_err(|e| sqlite_err(label, e)),
            Conn::Postgres(c) => c
                .transaction()
                .map(|t| Tx::Postgres(t, HashMap::new()))
                .map_err(|e| pg_err(label, e)),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        match self {
            Conn::Sqlite(_) => false,
            Conn::Postgres(c) => c.is_closed(),
        }
    }
}

/// A transaction: rolled back when dropped uncommitted.
pub(crate) enum Tx<'a> {
    /// With each statement's text in the dialect, spelt once.
    Sqlite(rusqlite::Transaction<'a>, HashMap<&'static str, String>),
    Postgres(
        postgres::Transaction<'a>,
        HashMap<&'static str, postgres::Statement>,
    ),
}

impl Tx<'_> {
    pub(crate) fn is_sqlite(&self) -> bool {
        matches!(self, Tx::Sqlite(..))
    }

    pub(crate) fn execute(
        &mut self,
        label: &str,
        sql: &'static str,
        params: &[Param],
    ) -> Result<u64, TraceError> {
        let mut changed = 0;
        self.execute_many(label, sql, std::iter::once(params), &mut |n| changed = n)?;
        Ok(changed)
    }

    /// Runs one statement for each row of parameters, prepared once,
    /// telling `each` how many rows each run changed.
    pub(crate) fn execute_many<'p, R: AsRef<[Param<'p>]>>(
        &mut self,
        label: &str,
        sql: &'static str,
        rows: impl Iterator<Item = R>,
        each: &mut dyn FnMut(u64),
    ) -> Result<(), TraceError> {
        match self {
            Tx::Sqlite(t, spelt) => {
                let text = spelt.entry(sql).or_insert_with(|| Dialect::Sqlite.sql(sql));
                let mut stmt = t.prepare_cached(text).map_err(|e| sqlite_err(label, e))?;
                for row in rows {
                    let n = stmt
                        .execute(rusqlite::params_from_iter(row.as_ref().iter()))
                        .map_err(|e| sqlite_err(label, e))?;
                    each(n as u64);
                }
                Ok(())
            }
            Tx::Postgres(t, prepared) => {
                let stmt = match prepared.get(sql) {
                    Some(s) => s.clone(),
                    None => {
                        let s = t
                            .prepare(&Dialect::Postgres.sql(sql))
                            .map_err(|e| pg_err(label, e))?;
                        prepared.insert(sql, s.clone());
                        s
                    }
                };
                for row in rows {
                    let refs: Vec<&(dyn ToSql + Sync)> = row
                        .as_ref()
                        .iter()
                        .map(|p| p as &(dyn ToSql + Sync))
                        .collect();
                    each(t.execute(&stmt, &refs).map_err(|e| pg_err(label, e))?);
                }
                Ok(())
            }
        }
    }

    pub(crate) fn commit(self, label: &str) -> Result<(), TraceError> {
        match self {
            Tx::Sqlite(t, _) => t.commit().map_err(|e| sqlite_err(label, e)),
            Tx::Postgres(t, _) => t.commit().map_err(|e| pg_err(label, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_goes_only_to_a_database_this_machine_names_or_hosts() {
        let trusts = |url: &str, env: Option<&str>| {
            let cfg: postgres::Config = url.parse().expect("url");
            trusts_with_password(url, &cfg, env)
        };
        for local in [
            "postgres://u@127.0.0.1/t",
            "postgres://u@localhost:5433/t",
            "postgres://u@[::1]/t",
        ] {
            assert!(trusts(local, None), "{local}");
        }
        // A host a committed config.yaml points at gets no password...
        let far = "postgres://u@db.attacker.example/t";
        assert!(!trusts(far, None));
        assert!(!trusts(
            "postgres://u@127.0.0.1,db.attacker.example/t",
            None
        ));
        assert!(!trusts(far, Some("postgres://u@db.team.example/t")));
        // ...unless this machine's environment names that database.
        assert!(trusts(far, Some(far)));
    }

    #[test]
    fn statements_are_spelt_per_dialect() {
        let sql = "SELECT {least}(a, ?1), {greatest}(b, ?12) WHERE c = '?'";
        assert_eq!(
            Dialect::Sqlite.sql(sql),
            "SELECT MIN(a, ?1), MAX(b, ?12) WHERE c = '?'"
        );
        assert_eq!(
            Dialect::Postgres.sql(sql),
            "SELECT LEAST(a, $1), GREATEST(b, $12) WHERE c = '?'"
        );
    }
}
