//! Where eval reports live. Ours are
//! `eval_reports/<bundle>/<version>/<suite>/<run-id>.yaml`; the existing
//! tool's sit directly under `eval_reports/`. This module is the one place
//! that knows the layout: it writes the path of a new report and walks the
//! directory into typed entries, so no caller parses a path back into a
//! bundle, a version and a suite. The walk never follows a link, and a
//! report is read only if it is a regular file.

use std::path::PathBuf;

use crate::error::Result;
use crate::{Store, fsx};

/// The directory under `.releaseops/`.
pub const DIR: &str = "eval_reports";

/// One report file found under `eval_reports/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportEntry {
    pub path: PathBuf,
    /// The path relative to `.releaseops/` (`eval_reports/...`), with `/`.
    pub rel: String,
    /// The file name without `.yaml`.
    pub run_id: String,
    /// Where our layout places it; `None` for any other file (the existing
    /// tool's reports, or something put there by hand).
    pub run: Option<RunKey>,
}

/// What our layout's path says about a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunKey {
    pub bundle: String,
    pub version: String,
    pub suite: String,
}

/// Which saved reports a caller wants; `None` matches anything.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReportFilter<'a> {
    pub bundle: Option<&'a str>,
    pub version: Option<&'a str>,
    pub suite: Option<&'a str>,
    /// A report's run id (its file name) or its path under `eval_reports/`;
    /// when given, the other filters are not consulted.
    pub run_id: Option<&'a str>,
}

impl ReportEntry {
    fn matches(&self, f: &ReportFilter<'_>) -> bool {
        if let Some(id) = f.run_id {
            let under = self.rel.strip_prefix("eval_reports/").unwrap_or(&self.rel);
            return self.run_id == id || under == id;
        }
        self.run.as_ref().is_some_and(|k| {
            f.bundle.is_none_or(|b| k.bundle == b)
                && f.version.is_none_or(|v| k.version == v)
                && f.suite.is_none_or(|s| k.suite == s)
        })
    }
}

impl Store {
    /// Where a new report of `suite` on `bundle@version` is written,
    /// relative to `.releaseops/`.
    pub fn report_rel_path(bundle: &str, version: &str, suite: &str, run_id: &str) -> String {
        format!("{DIR}/{bundle}/{version}/{suite}/{run_id}.yaml")
    }

    /// Every `.yaml` file under `eval_reports/`; links to directories are
    /// not followed.
    pub fn report_entries(&self) -> Vec<ReportEntry> {
        let root = self.dir().join(DIR);
        let mut found = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let Ok(kind) = e.file_type() else { continue };
                let p = e.path();
                if kind.is_dir() {
                    stack.push(p);
                    continue;
                }
                // A linked file is listed (and refused when read), so an
                // audit still sees it; a linked directory is not entered.
                if !(kind.is_file() || kind.is_symlink())
                    || p.extension().is_none_or(|x| x != "yaml")
                {
                    continue;
                }
                let under = p
                    .strip_prefix(&root)
                    .map(|r| r.to_string_lossy().replace('\\', "/"))
                    .unwrap_or_default();
                let parts: Vec<&str> = under.split('/').collect();
                let run = match parts.as_slice() {
                    [bundle, version, suite, _] => Some(RunKey {
                        bundle: bundle.to_string(),
                        version: version.to_string(),
                        suite: suite.to_string(),
                    }),
                    _ => None,
                };
                found.push(ReportEntry {
                    run_id: p
                        .file_stem()
                        .map(|s| s.to_string_lossy().to_string())
                        .unwrap_or_default(),
                    rel: format!("{DIR}/{under}"),
                    path: p,
                    run,
                });
            }
        }
        found
    }

    /// The saved reports that match, oldest first (run ids start with a UTC
    /// timestamp).
    pub fn find_reports(&self, filter: &ReportFilter<'_>) -> Vec<ReportEntry> {
        let mut found: Vec<ReportEntry> = self
            .report_entries()
            .into_iter()
            .filter(|e| e.matches(filter))
            .collect();
        found.sort_by(|a, b| a.path.file_name().cmp(&b.path.file_name()));
        found
    }

    /// What `parse` makes of a report (`kind` names what it makes), reused
    /// while the file stays the very file it was made from
    /// ([`fsx::read_parsed`]): a list of the latest reports reads their
    /// summaries once, not on every request.
    pub fn read_report_with<T, E>(
        &self,
        entry: &ReportEntry,
        kind: &'static str,
        parse: impl FnOnce(&[u8]) -> std::result::Result<T, E>,
    ) -> Result<std::result::Result<T, E>>
    where
        T: Clone + Send + Sync + 'static,
    {
        fsx::read_parsed(&entry.path, crate::REPORT_MAX_BYTES, kind, parse)?.ok_or_else(|| {
            crate::StoreError::Io {
                what: "cannot read",
                path: entry.path.clone(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            }
        })
    }

    /// A report's bytes, refusing a link and a file larger than any report.
    pub fn read_report(&self, entry: &ReportEntry) -> Result<Vec<u8>> {
        fsx::read_regular_opt(&entry.path, crate::REPORT_MAX_BYTES)?.ok_or_else(|| {
            crate::StoreError::Io {
                what: "cannot read",
                path: entry.path.clone(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_typed_and_links_are_not_followed() {
        let root = tempfile::tempdir().expect("tmp");
        let (store, _) = Store::init(root.path()).expect("init");
        let dir = store.dir().join(DIR);
        let ours = dir.join("a/1.0.0/smoke");
        std::fs::create_dir_all(&ours).expect("mkdir");
        std::fs::write(ours.join("20261121T090000Z-x.yaml"), "suite_id: smoke\n").expect("write");
        std::fs::write(dir.join("sha256:ab.yaml"), "suite_id: old\n").expect("write");
        // A link to a directory outside, and a linked report file.
        let outside = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(outside.path().join("b/1/s")).expect("mkdir");
        std::fs::write(outside.path().join("b/1/s/r.yaml"), "x: 1\n").expect("write");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(outside.path().join("b"), dir.join("b")).expect("link");
            std::os::unix::fs::symlink(
                outside.path().join("b/1/s/r.yaml"),
                dir.join("linked.yaml"),
            )
            .expect("link");
        }
        let mut all = store.report_entries();
        all.sort_by(|x, y| x.rel.cmp(&y.rel));
        let rels: Vec<&str> = all.iter().map(|e| e.rel.as_str()).collect();
        #[cfg(unix)]
        assert_eq!(
            rels,
            [
                "eval_reports/a/1.0.0/smoke/20261121T090000Z-x.yaml",
                "eval_reports/linked.yaml",
                "eval_reports/sha256:ab.yaml"
            ]
        );
        let run = &all[0];
        assert_eq!(
            run.run,
            Some(RunKey {
                bundle: "a".into(),
                version: "1.0.0".into(),
                suite: "smoke".into()
            })
        );
        assert_eq!(run.run_id, "20261121T090000Z-x");
        let filter = ReportFilter {
            bundle: Some("a"),
            suite: Some("smoke"),
            ..Default::default()
        };
        assert_eq!(store.find_reports(&filter).len(), 1);
        let by_id = ReportFilter {
            run_id: Some("sha256:ab"),
            ..Default::default()
        };
        assert_eq!(store.find_reports(&by_id)[0].run, None);
        assert!(store.read_report(run).is_ok());
        #[cfg(unix)]
        assert!(
            store.read_report(&all[1]).is_err(),
            "a linked report is refused"
        );
    }
}
