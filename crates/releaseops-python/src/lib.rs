//! `releaseops._native`: the Python SDK's native part.
//!
//! [`Loader`] wraps [`releaseops_runtime::RuntimeLoader`]: the same
//! verification, cache, pointer revalidation and last-good-bundle behaviour
//! as a Rust agent gets. A load answered from memory never releases the GIL
//! (it is a hash-map lookup); one that reads the store releases it, so
//! threads load in parallel. The Python objects a bundle becomes are built
//! once per loaded bundle (by the factory the pure-Python layer passes in)
//! and handed out again for as long as the loader serves that bundle: a
//! cached `load_bundle` is one call and two lookups.
//!
//! Errors become the exception classes of `releaseops.errors`, chosen by
//! what went wrong, with messages that name the reference and the fix.

// A library never prints: what it has to say goes back to its caller.
#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use releaseops_runtime::{ArtifactProblem, LoadError, LoadedBundle, RuntimeLoader};
use serde_json::{Map, Number, Value};

/// A bundle loader over a repository (holding `.releaseops/`), a
/// `.releaseops` directory or a `releaseops export` directory.
#[pyclass(frozen, module = "releaseops._native")]
struct Loader {
    inner: RuntimeLoader,
    /// Called with a bundle's JSON data; returns what `load` hands out.
    factory: Py<PyAny>,
    /// What `factory` made, by reference, with the bundle it was made from.
    objects: Mutex<HashMap<String, Made>>,
    /// The failure last reported through Python's logging (the loader
    /// serves the last good bundle around it).
    reported: Mutex<Option<String>>,
}

/// A loaded bundle and the Python objects made of it.
type Made = (Arc<LoadedBundle>, Py<PyAny>);

#[pymethods]
impl Loader {
    #[new]
    #[pyo3(signature = (path, revalidate, factory))]
    fn new(py: Python<'_>, path: PathBuf, revalidate: f64, factory: Py<PyAny>) -> PyResult<Self> {
        let interval = seconds("revalidate", revalidate)?;
        // Two stats: not worth releasing the GIL for (each release and
        // reacquire is a thread switch when other threads wait for it).
        let inner = RuntimeLoader::with_revalidate(&path, interval)
            .map_err(|e| error(py, &path.display().to_string(), &e))?;
        Ok(Loader {
            inner,
            factory,
            objects: Mutex::new(HashMap::new()),
            reported: Mutex::new(None),
        })
    }

    /// What `factory` made of the bundle `reference` names, reading and
    /// verifying the store (without the GIL) when memory cannot answer.
    fn load(&self, py: Python<'_>, reference: &str) -> PyResult<Py<PyAny>> {
        let bundle = match self.inner.load_cached(reference) {
            Some(b) => b,
            None => {
                let loaded = py.detach(|| self.inner.load(reference));
                self.report(py);
                loaded.map_err(|e| error(py, reference, &e))?
            }
        };
        self.object(py, reference, bundle)
    }

    /// The same when memory can answer, else None (no file is touched).
    fn load_cached(&self, py: Python<'_>, reference: &str) -> PyResult<Option<Py<PyAny>>> {
        match self.inner.load_cached(reference) {
            Some(b) => self.object(py, reference, b).map(Some),
            None => Ok(None),
        }
    }

    /// The next load of every environment pointer checks the store again.
    fn invalidate(&self) {
        self.inner.invalidate();
    }

    /// The error the loader is serving the last good bundle around, if any.
    #[getter]
    fn last_error(&self) -> Option<String> {
        self.inner.last_error().map(|e| e.to_string())
    }

    /// The directory bundles are read from.
    #[getter]
    fn dir(&self) -> PathBuf {
        self.inner.dir().to_path_buf()
    }
}

impl Loader {
    /// Tells Python's logging (logger `releaseops`) once when the loader
    /// starts serving the last good bundle around a failure, and when the
    /// store recovers: the Rust side's `tracing` is not seen from Python.
    fn report(&self, py: Python<'_>) {
        let now = self.inner.last_error().map(|e| e.to_string());
        let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
        if *reported == now {
            return;
        }
        let (level, message) = match &now {
            Some(e) => (
                "warning",
                format!("releaseops: serving the last good bundle: {e}"),
            ),
            None => (
                "info",
                "releaseops: the store reads again; serving what it says".into(),
            ),
        };
        *reported = now;
        drop(reported);
        let logged = py
            .import("logging")
            .and_then(|l| l.call_method1("getLogger", ("releaseops",)))
            .and_then(|l| l.call_method1(level, (message,)));
        if let Err(e) = logged {
            // Logging itself failed (a broken handler): not the load's fault.
            e.print(py);
        }
    }

    fn object(
        &self,
        py: Python<'_>,
        reference: &str,
        bundle: Arc<LoadedBundle>,
    ) -> PyResult<Py<PyAny>> {
        {
            let objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((b, o)) = objects.get(reference)
                && Arc::ptr_eq(b, &bundle)
            {
                return Ok(o.clone_ref(py));
            }
        }
        let data = to_py(py, &bundle.to_json())?;
        let made = self.factory.call1(py, (data,))?;
        let old = self
            .objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(reference.to_string(), (bundle, made.clone_ref(py)));
        drop(old);
        Ok(made)
    }
}

/// `value` seconds as a Duration, or a ValueError naming `what`.
fn seconds(what: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        PyValueError::new_err(format!(
            "{what} must be a finite number of seconds >= 0, not {value}"
        ))
    })
}

/// `(id, environment, version)` of a reference, one of the last two None;
/// InvalidReferenceError when it is not one.
#[pyfunction]
fn parse_reference(
    py: Python<'_>,
    reference: &str,
) -> PyResult<(String, Option<String>, Option<String>)> {
    match releaseops_runtime::BundleRef::parse(reference) {
        Ok(releaseops_runtime::BundleRef::Env { id, env }) => Ok((id, Some(env), None)),
        Ok(releaseops_runtime::BundleRef::Pinned { id, version }) => Ok((id, None, Some(version))),
        Err(e) => Err(error(py, reference, &e)),
    }
}

/// Renders a prompt template with the runtime's Jinja2-compatible engine
/// (strict: a missing variable is an error). `variables` are JSON-like
/// values: str, int, float, bool, None, and lists, tuples and str-keyed
/// dicts of them.
#[pyfunction]
#[pyo3(signature = (template, variables, name = "prompt"))]
fn render(
    py: Python<'_>,
    template: &str,
    variables: &Bound<'_, PyDict>,
    name: &str,
) -> PyResult<String> {
    let mut vars = Map::new();
    let mut budget = MAX_VALUES;
    for (k, v) in variables.iter() {
        let key: String = k
            .extract()
            .map_err(|_| PyTypeError::new_err(format!("{name}: variable names must be str")))?;
        let value = from_py(&v, &key, 0, &mut budget).map_err(|m| {
            raise(
                py,
                "RenderTypeError",
                &format!("{name}: {m}"),
                None,
                PyTypeError::new_err,
            )
        })?;
        vars.insert(key, value);
    }
    py.detach(|| releaseops_format::template::render(template, &vars))
        .map_err(|m| {
            raise(
                py,
                "RenderError",
                &format!("{name}: {m}"),
                None,
                PyValueError::new_err,
            )
        })
}

/// The exception class of `releaseops.errors` for what went wrong.
fn class_of(e: &LoadError) -> &'static str {
    match e {
        // `ID@ENV` with a bad ENV: the existing tool looked such an
        // environment up and raised FileNotFoundError, which this is too.
        LoadError::BadReference { reference, .. }
            if !reference.contains("==")
                && reference.split_once('@').is_some_and(|(id, env)| {
                    releaseops_format::names::validate_bundle_id(id).is_ok()
                        && releaseops_format::names::validate_env_name(env).is_err()
                }) =>
        {
            "InvalidEnvironmentNameError"
        }
        LoadError::BadReference { .. } => "InvalidReferenceError",
        LoadError::NoStore { .. } => "StoreNotFoundError",
        LoadError::UnknownEnv { .. } => "EnvironmentNotFoundError",
        LoadError::NotDeployed { .. } => "BundleNotDeployedError",
        LoadError::UnknownVersion { .. } => "VersionNotFoundError",
        LoadError::Corrupt { .. } => "CorruptStoreError",
        LoadError::Tampered { .. } => "VerifyError",
        LoadError::Artifact { problem, .. } => match problem {
            ArtifactProblem::Tampered => "VerifyError",
            ArtifactProblem::Missing => "CorruptStoreError",
            ArtifactProblem::Invalid => "InvalidBundleError",
            ArtifactProblem::Unreadable => "StoreReadError",
        },
        LoadError::Io { .. } => "StoreReadError",
        LoadError::Render(_) => "RenderError",
    }
}

fn error(py: Python<'_>, reference: &str, e: &LoadError) -> PyErr {
    error_with(py, reference, e, str::to_string)
}

/// [`error`], its message passed through `clean` first.
fn error_with(
    py: Python<'_>,
    reference: &str,
    e: &LoadError,
    clean: impl Fn(&str) -> String,
) -> PyErr {
    // A bad reference's message already quotes it.
    let message = clean(&match e {
        LoadError::BadReference { .. } | LoadError::NoStore { .. } => e.to_string(),
        _ => format!("cannot load '{reference}': {e}"),
    });
    raise(
        py,
        class_of(e),
        &message,
        Some(reference),
        PyValueError::new_err,
    )
}

/// An instance of `releaseops.errors.<class>` carrying `message` (and the
/// reference as `.reference`); the fallback when that module is missing.
fn raise(
    py: Python<'_>,
    class: &str,
    message: &str,
    reference: Option<&str>,
    fallback: fn(String) -> PyErr,
) -> PyErr {
    let made = (|| -> PyResult<PyErr> {
        let cls = py.import("releaseops.errors")?.getattr(class)?;
        let e = cls.call1((message,))?;
        e.setattr("reference", reference)?;
        Ok(PyErr::from_value(e))
    })();
    made.unwrap_or_else(|_| fallback(message.to_string()))
}

/// JSON data as Python objects (objects keep their key order).
fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for x in items {
                list.append(to_py(py, x)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, x) in map {
                dict.set_item(k, to_py(py, x)?)?;
            }
            dict.into_any()
        }
    })
}

/// How deeply render variables may nest (a cycle, or a structure no
/// template reads, would otherwise exhaust the stack).
const MAX_DEPTH: usize = 64;

/// How many values render variables may hold in all (a structure sharing
/// its parts, `x = [x0, x0]` forty levels deep, would otherwise be walked
/// 2^40 times).
const MAX_VALUES: usize = 1_000_000;

/// A render variable as JSON, or what is wrong with it (naming it by its
/// path: `order.items[2]`).
fn from_py(
    v: &Bound<'_, PyAny>,
    path: &str,
    depth: usize,
    budget: &mut usize,
) -> Result<Value, String> {
    let root = || path.split(['.', '[']).next().unwrap_or(path).to_string();
    if *budget == 0 {
        return Err(format!(
            "the variables hold more than {MAX_VALUES} values in all (at '{path}'); pass only what the template reads"
        ));
    }
    *budget -= 1;
    if depth > MAX_DEPTH {
        return Err(format!(
            "variable '{}' nests more than {MAX_DEPTH} levels deep (or contains itself); pass a flatter value",
            root()
        ));
    }
    if v.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if v.cast::<PyInt>().is_ok() {
        if let Ok(i) = v.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = v.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Err(format!(
            "variable '{path}' is an int too large for a template (over 64 bits); pass it as a str"
        ));
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        let x = f.value();
        return Number::from_f64(x).map(Value::Number).ok_or_else(|| {
            format!("variable '{path}' is {x}, which a template cannot hold; pass a finite number")
        });
    }
    if let Ok(s) = v.cast::<PyString>() {
        return s
            .to_cow()
            .map(|s| Value::String(s.into_owned()))
            .map_err(|e| format!("variable '{path}' is not valid text: {e}"));
    }
    if let Ok(d) = v.cast::<PyDict>() {
        let mut m = Map::new();
        for (k, x) in d.iter() {
            let Ok(key) = k.extract::<String>() else {
                return Err(format!(
                    "variable '{path}' is a dict with a key that is not a str ({}); templates read str keys only",
                    type_name(&k)
                ));
            };
            let value = from_py(&x, &format!("{path}.{key}"), depth + 1, budget)?;
            m.insert(key, value);
        }
        return Ok(Value::Object(m));
    }
    let items = if let Ok(l) = v.cast::<PyList>() {
        Some(l.iter().collect::<Vec<_>>())
    } else if let Ok(t) = v.cast::<PyTuple>() {
        Some(t.iter().collect::<Vec<_>>())
    } else {
        None
    };
    if let Some(items) = items {
        return items
            .iter()
            .enumerate()
            .map(|(i, x)| from_py(x, &format!("{path}[{i}]"), depth + 1, budget))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    Err(format!(
        "variable '{path}' is a {}; a template takes str, int, float, bool, None, and lists, tuples and dicts of them (convert it, e.g. with str())",
        type_name(v)
    ))
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".into())
}

/// The largest answer the client reads (a bundle's artifacts are at most
/// 8 MiB each).
const MAX_BODY: u64 = 256 * 1024 * 1024;

/// `HttpRuntimeLoader`'s requests to `releaseops serve`: kept-alive
/// connections shared by every thread, the GIL released while waiting,
/// every bundle verified here before Python sees it, and the token held
/// here (never in a Python attribute) and blanked out of anything the
/// server says.
#[pyclass(frozen, module = "releaseops._native")]
struct HttpClient {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

/// What the client got: (status, ETag, the verified bundle's data for a 200,
/// the body's text otherwise).
type Fetched<'py> = (u16, String, Option<Bound<'py, PyAny>>, String);

#[pymethods]
impl HttpClient {
    #[new]
    #[pyo3(signature = (base, token, timeout))]
    fn new(base: String, token: Option<String>, timeout: f64) -> PyResult<Self> {
        let timeout = seconds("timeout", timeout)?;
        if timeout.is_zero() {
            return Err(PyValueError::new_err("timeout must be more than 0 seconds"));
        }
        if let Some(t) = &token
            && t.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(PyValueError::new_err(
                "the token has spaces or control characters; pass it as `releaseops token new` printed it",
            ));
        }
        // TLS by rustls with ring, whichever crate asked first.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            // No redirect may carry the token elsewhere.
            .max_redirects(0)
            .user_agent(concat!("releaseops-python/", env!("CARGO_PKG_VERSION")))
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .provider(ureq::tls::TlsProvider::Rustls)
                    .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                    .build(),
            )
            .build()
            .new_agent();
        Ok(HttpClient {
            agent,
            base: base.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.is_empty()),
        })
    }

    /// `GET base + path` for `reference` (with `If-None-Match: etag`). A
    /// 200 is verified as the bundle `reference` names, or raises what is
    /// wrong with it (VerifyError for a tampered answer); a failure to get
    /// an answer raises ConnectionError.
    #[pyo3(signature = (reference, path, etag = None, timeout = None))]
    fn fetch<'py>(
        &self,
        py: Python<'py>,
        reference: &str,
        path: &str,
        etag: Option<&str>,
        timeout: Option<f64>,
    ) -> PyResult<Fetched<'py>> {
        let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
        let url = format!("{}{path}", self.base);
        let got = py.detach(|| -> Result<_, String> {
            let mut req = self.agent.get(&url).header("Accept", "application/json");
            if let Some(t) = &self.token {
                req = req.header("Authorization", format!("Bearer {t}"));
            }
            if let Some(tag) = etag {
                req = req.header("If-None-Match", tag);
            }
            let req = match timeout {
                Some(t) => req.config().timeout_global(Some(t)).build(),
                None => req.config().build(),
            };
            let mut resp = req.call().map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let tag = resp
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let body = resp
                .body_mut()
                .with_config()
                .limit(MAX_BODY)
                .read_to_vec()
                .map_err(|e| e.to_string())?;
            let verified = (status == 200).then(|| LoadedBundle::from_resolved(reference, &body));
            Ok((status, tag, verified, body))
        });
        let (status, tag, verified, body) = got.map_err(|e| {
            pyo3::exceptions::PyConnectionError::new_err(
                self.redact(&format!("{} did not answer: {e}", self.base)),
            )
        })?;
        match verified {
            Some(Ok(bundle)) => Ok((
                status,
                tag,
                Some(to_py(py, &bundle.to_json())?),
                String::new(),
            )),
            // What a server sends may echo the token back: never repeat it.
            // And may be any length: keep the start.
            Some(Err(e)) => Err(error_with(py, reference, &e, |m| {
                let m = self.redact(m);
                match m.char_indices().nth(2000) {
                    Some((at, _)) => format!("{}...", &m[..at]),
                    None => m,
                }
            })),
            None => {
                let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
                Ok((status, tag, None, self.redact(&text)))
            }
        }
    }

    /// `text` with the token blanked out.
    fn redact(&self, text: &str) -> String {
        match &self.token {
            Some(t) if text.contains(t.as_str()) => text.replace(t.as_str(), "[token]"),
            _ => text.to_string(),
        }
    }

    fn __repr__(&self) -> String {
        format!("HttpClient({:?})", self.base)
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Loader>()?;
    m.add_class::<HttpClient>()?;
    m.add_function(wrap_pyfunction!(render, m)?)?;
    m.add_function(wrap_pyfunction!(parse_reference, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
