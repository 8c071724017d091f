//! The two databases behind the trace store, behind one small interface:
//! run a statement, stream a query's rows, hold a transaction. Statements
//! are written once, in the SQL both understand, and spelt per dialect.

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
            Dialect::Sqlite => sql.replace("{least}", "MIN").replace("{greatest}", "MAX"),
            Dialect::Postgres => {
                let sql = sql
                    .replace("{least}", "LEAST")
                    .replace("{greatest}", "GREATEST");
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

/// A statement's parameter, typed even when null (PostgreSQL checks).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Text(Option<String>),
    Int(Option<i64>),
    Float(Option<f64>),
}

impl From<&str> for Param {
    fn from(s: &str) -> Param {
        Param::Text(Some(s.to_string()))
    }
}
impl From<String> for Param {
    fn from(s: String) -> Param {
        Param::Text(Some(s))
    }
}
impl From<&String> for Param {
    fn from(s: &String) -> Param {
        Param::Text(Some(s.clone()))
    }
}
impl From<Option<&str>> for Param {
    fn from(s: Option<&str>) -> Param {
        Param::Text(s.map(String::from))
    }
}
impl From<&Option<String>> for Param {
    fn from(s: &Option<String>) -> Param {
        Param::Text(s.clone())
    }
}
impl From<Option<String>> for Param {
    fn from(s: Option<String>) -> Param {
        Param::Text(s)
    }
}
impl From<i64> for Param {
    fn from(v: i64) -> Param {
        Param::Int(Some(v))
    }
}
impl From<Option<i64>> for Param {
    fn from(v: Option<i64>) -> Param {
        Param::Int(v)
    }
}
impl From<Option<f64>> for Param {
    fn from(v: Option<f64>) -> Param {
        Param::Float(v)
    }
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Param::Text(v) => rusqlite::ToSql::to_sql(v),
            Param::Int(v) => rusqlite::ToSql::to_sql(v),
            Param::Float(v) => rusqlite::ToSql::to_sql(v),
        }
    }
}

impl ToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Text(v) => v.to_sql(ty, out),
            Param::Int(v) => v.to_sql(ty, out),
            Param::Float(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <String as ToSql>::accepts(ty) || <i64 as ToSql>::accepts(ty) || <f64 as ToSql>::accepts(ty)
    }

    // Each value is checked against the column by its own type.
    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Text(v) => v.to_sql_checked(ty, out),
            Param::Int(v) => v.to_sql_checked(ty, out),
            Param::Float(v) => v.to_sql_checked(ty, out),
        }
    }
}

/// A result row of either database.
pub(crate) trait Row {
    fn text(&self, i: usize) -> Result<Option<String>, TraceError>;
    fn int(&self, i: usize) -> Result<Option<i64>, TraceError>;
    fn float(&self, i: usize) -> Result<Option<f64>, TraceError>;

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

/// Connects to PostgreSQL: the password from the URL (only in
/// RELEASEOPS_TRACES_DATABASE), else PGPASSWORD; the user from the URL,
/// else PGUSER, else USER; ten seconds to connect unless the URL says.
pub(crate) fn connect_postgres(url: &str, label: &str) -> Result<postgres::Client, TraceError> {
    let mut cfg: postgres::Config = url.parse().map_err(|e: postgres::Error| {
        TraceError::Store(format!(
            "{label}: not a PostgreSQL URL ({}); write postgres://USER@HOST:PORT/DATABASE",
            redact::text(&e.to_string())
        ))
    })?;
    if cfg.get_password().is_none()
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
    cfg.connect(postgres::NoTls).map_err(|e| pg_err(label, e))
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
                .map(Tx::Sqlite)
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
    Sqlite(rusqlite::Transaction<'a>),
    Postgres(
        postgres::Transaction<'a>,
        HashMap<&'static str, postgres::Statement>,
    ),
}

impl Tx<'_> {
    pub(crate) fn execute(
        &mut self,
        label: &str,
        sql: &'static str,
        params: &[Param],
    ) -> Result<u64, TraceError> {
        match self {
            Tx::Sqlite(t) => {
                let text = Dialect::Sqlite.sql(sql);
                t.prepare_cached(&text)
                    .and_then(|mut s| s.execute(rusqlite::params_from_iter(params)))
                    .map(|n| n as u64)
                    .map_err(|e| sqlite_err(label, e))
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
                let refs: Vec<&(dyn ToSql + Sync)> =
                    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                t.execute(&stmt, &refs).map_err(|e| pg_err(label, e))
            }
        }
    }

    pub(crate) fn commit(self, label: &str) -> Result<(), TraceError> {
        match self {
            Tx::Sqlite(t) => t.commit().map_err(|e| sqlite_err(label, e)),
            Tx::Postgres(t, _) => t.commit().map_err(|e| pg_err(label, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
