//! The command-line grammar. It accepts the existing tool's syntax too
//! (`promote promote ...`, `promote rollback ...`, `bundle create -v`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  error: the operation failed (not found, refused, I/O)
  2  usage: the command line or an input value is wrong
  3  blocked: a promotion gate did not pass (also for --dry-run)
  4  verification failed: `bundle verify` or `history verify` found problems,
     or a file a change builds on disagrees with the history (nothing changed)
  5  `eval run` verdict FAIL
  6  `eval run` verdict INCONCLUSIVE (the evidence cannot tell)

Environment:
  RELEASEOPS_ACTOR  who is acting (else git user.name <user.email>)
  RELEASEOPS_NOW    pretend it is this time: only with --rehearsal, in a store
                    made by `init --rehearsal`; every record says so
  NO_COLOR          disable colour";

#[derive(Parser, Debug)]
#[command(
    name = "releaseops",
    version,
    about = "Release engineering for AI agent behaviour: bundles, gated promotion, rollback, audit.",
    after_help = AFTER_HELP
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct Global {
    /// Repository root (default: the nearest directory upward with .releaseops/)
    #[arg(long, global = true, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Print machine-readable JSON (errors too)
    #[arg(long, global = true)]
    pub json: bool,
    /// Who is acting (default: $RELEASEOPS_ACTOR, then git's user.name <user.email>)
    #[arg(long, global = true, env = "RELEASEOPS_ACTOR", value_name = "NAME")]
    pub actor: Option<String>,
    /// Do not commit the change to git
    #[arg(long, global = true)]
    pub no_commit: bool,
    /// Work on a rehearsal store (made with `init --rehearsal`), where
    /// RELEASEOPS_NOW may set the clock; refused on any other store
    #[arg(long, global = true)]
    pub rehearsal: bool,
    /// With sync on: record the change in this clone only, marked unpushed
    /// (`releaseops sync` pushes it later, checked again on the remote's state)
    #[arg(long, global = true)]
    pub offline: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Create .releaseops/ in this repository (or complete an existing one)
    Init(InitArgs),
    /// Create, list, inspect, verify and diff bundles
    #[command(subcommand)]
    Bundle(BundleCmd),
    /// Environments: what runs where, now or at any past moment
    #[command(subcommand)]
    Env(EnvCmd),
    /// Promote a bundle version into an environment, through its gates
    Promote(PromoteArgs),
    /// Approve a bundle version for an environment
    Approve(ApproveArgs),
    /// Reject a bundle version: it can never be promoted again
    Reject(RejectArgs),
    /// Roll an environment back to a version that was live there before
    Rollback(RollbackArgs),
    /// The audit history (`history verify` checks it)
    History(HistoryArgs),
    /// Where things stand: what runs in each stage, what waits to go there
    /// next and on what (approvals, soak left, failing suites, the agent)
    Status(StatusArgs),
    /// Evaluation suites: create, list, run against a bundle, show reports
    #[command(subcommand)]
    Eval(EvalCmd),
    /// The release decision agent: decide, record outcomes, learn
    #[command(subcommand)]
    Agent(AgentCmd),
    /// Delivery metrics from the history
    #[command(subcommand)]
    Metrics(MetricsCmd),
    /// Production traces: import trace files; list, show and count what the
    /// trace store holds (spans arrive over OTLP at `releaseops serve`)
    #[command(subcommand)]
    Traces(TracesCmd),
    /// Behaviour in production: a version's metrics, and two versions (or
    /// two environments) compared with statistical tests
    #[command(subcommand)]
    Analytics(AnalyticsCmd),
    /// Why did the agent do that: a trace's action attributed to the prompt
    /// lines and policy rules of its bundle, offline, with the rule it breaks
    #[command(subcommand)]
    Attribution(AttributionCmd),
    /// Run recorded production inputs through a candidate and judge it
    /// against what production did (an eval report: same formats, exit
    /// codes and gates); `replay export-suite` only writes the suite
    Replay(Box<ReplayArgs>),
    /// Write a self-contained snapshot of a bundle (manifest + objects) that
    /// the runtime loader reads with no git and no repository
    Export {
        /// ID@ENV (what the environment runs), ID@VERSION or ID==VERSION
        reference: String,
        /// The directory to write (new, empty, or an earlier export)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// The telemetry attributes bundles put on spans
    #[command(subcommand)]
    Telemetry(TelemetryCmd),
    /// Serve the HTTP API: resolved bundles with ETags, watches, the state
    /// and history, and (with tokens) promote, approve, reject and rollback
    Serve(ServeArgs),
    /// API tokens for `releaseops serve`
    #[command(subcommand)]
    Token(TokenCmd),
    /// Walk a sample agent project through a full release, offline
    Demo(DemoArgs),
    /// Print shell completions
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Bring this clone up to date with the team's git remote and push its
    /// unpushed changes (`--enable REMOTE` turns sync on)
    Sync(SyncArgs),
    /// Print the version
    Version,
}

#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// The address to listen on (loopback unless you say otherwise; port 0
    /// picks a free one)
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// The tokens file (`releaseops token new` writes it). More tokens can
    /// come from RELEASEOPS_API_TOKENS as ROLE:OWNER:TOKEN entries.
    #[arg(long, value_name = "FILE", env = "RELEASEOPS_API_TOKENS_FILE")]
    pub tokens: Option<PathBuf>,
    /// Serve reads without a token even when tokens are configured
    #[arg(long)]
    pub public_reads: bool,
    /// Connections served at once; beyond, a connection gets 503 and is closed
    #[arg(long, default_value_t = releaseops_server::DEFAULT_MAX_CONNECTIONS, value_name = "N")]
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers (also the longest a
    /// kept-alive connection may sit idle)
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub header_timeout: u64,
    /// A host name (NAME or NAME:PORT) requests may be addressed to when
    /// reads need no token, besides the bound address and localhost (repeatable)
    #[arg(long, value_name = "HOST")]
    pub allow_host: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum TokenCmd {
    /// Make a new API token: it is printed once, and only its SHA-256 is
    /// added to the tokens file
    New {
        /// Who holds it (`Name <email>`): recorded as the actor of what it does
        #[arg(long)]
        owner: String,
        /// What it may do: viewer reads; deployer also promotes and rolls
        /// back; approver also approves and rejects; admin does everything;
        /// ingest only sends spans to POST /v1/traces
        #[arg(long, value_parser = ["viewer", "deployer", "approver", "admin", "ingest"])]
        role: String,
        /// The tokens file to add it to (created readable by you only)
        #[arg(long, value_name = "FILE", env = "RELEASEOPS_API_TOKENS_FILE")]
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum TelemetryCmd {
    /// Print exactly the attributes (and baggage) the runtime loader sets for
    /// a bundle
    Show {
        /// ID@ENV, ID@VERSION or ID==VERSION
        reference: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum TracesCmd {
    /// Import trace files: JSON lines of the existing tool's trace dicts, or
    /// OTLP JSON as the Collector's file exporter writes it. Each file is
    /// stored whole or not at all; a bad line is named by its number
    Import {
        /// The files, each imported in one transaction (JSON lines, or one JSON document)
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Pull spans from Langfuse, LangSmith or Phoenix over their APIs:
    /// incremental (the position is saved with each page) and idempotent
    /// (a span is stored once). Credentials come from the environment only
    Pull(PullArgs),
    /// Traces, newest first
    List {
        #[command(flatten)]
        filter: TraceFilterArgs,
        /// How many to show
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: usize,
    },
    /// One trace and its spans
    Show {
        /// The trace id (32 hex digits, or a unique prefix of at least 8)
        id: String,
    },
    /// Traces and errors per bundle version and environment, and the store's size
    Stats {
        #[command(flatten)]
        filter: TraceFilterArgs,
    },
}

#[derive(Args, Debug, Clone)]
pub(crate) struct PullArgs {
    /// The platform: langfuse (LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY,
    /// LANGFUSE_BASE_URL), langsmith (LANGSMITH_API_KEY, LANGSMITH_ENDPOINT,
    /// LANGSMITH_PROJECT) or phoenix (PHOENIX_API_KEY if needed,
    /// PHOENIX_BASE_URL, PHOENIX_PROJECT_NAME)
    #[arg(value_parser = ["langfuse", "langsmith", "phoenix"])]
    pub platform: String,
    /// The earliest start time: an age (24h, 7d) or an RFC 3339 time.
    /// What earlier pulls covered is not asked for again
    #[arg(long, default_value = "24h", value_name = "AGE|TIME")]
    pub since: String,
    /// The API's address (else the platform's variable, else its cloud or
    /// local default)
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The project (LangSmith: name or id; Phoenix: name or id)
    #[arg(long)]
    pub project: Option<String>,
    /// Records per request (1 to 1000)
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub page_size: u32,
    /// Most pages one pull reads
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub max_pages: u64,
    /// Retries of a request that failed for a reason that may pass (429, 5xx,
    /// a dropped connection)
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub retries: u32,
    /// Send credentials over plain http to a host that is not this machine
    #[arg(long)]
    pub allow_http: bool,
    /// Forget what earlier pulls covered, and pull the whole window again
    /// (spans already stored are still stored once)
    #[arg(long)]
    pub reset: bool,
    /// How much before the end of what earlier pulls covered the next one
    /// starts again, for records the platform indexes late (an age: 1h, 30m)
    #[arg(long, default_value = "1h", value_name = "AGE")]
    pub overlap: String,
}

#[derive(Args, Debug, Clone, Default)]
pub(crate) struct TraceFilterArgs {
    /// Only this bundle (ID) or version (ID@VERSION)
    #[arg(long, value_name = "ID[@VERSION]")]
    pub bundle: Option<String>,
    #[command(flatten)]
    pub window: AnalyticsWindow,
    /// Only traces that failed (error) or did not (ok)
    #[arg(long, value_parser = ["ok", "error"])]
    pub status: Option<String>,
    /// Only traces that called this tool
    #[arg(long)]
    pub tool: Option<String>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum AttributionCmd {
    /// Explain one trace: every prompt line and policy rule ranked by how
    /// much it governs the action, and whether the action breaks one
    Explain(ExplainArgs),
    /// Explain many traces and count the assessments (expected, likely
    /// expected, contradicts, unclear), the lines most often primary and the
    /// rules broken
    AnalyzeBatch(BatchArgs),
    /// What changed between two versions explains which behaviour: each
    /// changed prompt line or policy rule whose verdict on production
    /// actions flips (a refund of 130 breaks the old limit, follows the
    /// new), with how often that behaviour appears under each version
    Diff(AttributionDiffArgs),
}

#[derive(Args, Debug)]
pub(crate) struct AttributionDiffArgs {
    /// The old version: ID@VERSION
    pub old: String,
    /// The new version: ID@VERSION
    pub new: String,
    #[command(flatten)]
    pub stored: StoredTraces,
    #[arg(short = 'f', long, value_enum, default_value = "text")]
    pub format: TextOrJson,
}

/// Which stored traces: an environment, a start, a count.
#[derive(Args, Debug, Clone)]
pub(crate) struct StoredTraces {
    /// Stored traces from this environment only
    #[arg(long)]
    pub env: Option<String>,
    /// Stored traces that started at or after: RFC 3339, or an age (24h, 7d)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// At most this many stored traces (of each version), newest first
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub limit: usize,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ReplayArgs {
    #[command(subcommand)]
    pub cmd: Option<ReplayCmd>,
    /// The candidate: ID@VERSION (or ID@ENV, ID==VERSION)
    #[arg(short = 'b', long, value_name = "ID@VERSION")]
    pub bundle: Option<String>,
    /// Replay inputs recorded in the trace store (the one source today)
    #[arg(long)]
    pub from_traces: bool,
    #[command(flatten)]
    pub select: ReplaySelect,
    /// Cases run at once (default: the suite's, else 8)
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Call the model even when the response cache has the answer
    #[arg(long)]
    pub no_cache: bool,
    /// How to print the report (machine formats print only the document)
    #[arg(short = 'f', long, value_enum, default_value = "summary")]
    pub format: ReportFormat,
    /// Also write the report in --format to this file
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum ReplayCmd {
    /// Write the replay suite (.releaseops/evals/SUITE.yaml) from production
    /// traces without running it: incidents become regression cases
    ExportSuite {
        #[command(flatten)]
        select: ReplaySelect,
    },
}

/// Which production traces a replay reads, and how its suite is made.
#[derive(Args, Debug, Clone)]
pub(crate) struct ReplaySelect {
    /// The version whose production traffic is replayed: ID@VERSION, or
    /// ID@ENV for what ENV runs
    #[arg(long, value_name = "ID@VERSION")]
    pub source: Option<String>,
    #[command(flatten)]
    pub stored: StoredTraces,
    /// Stored traces that started before: RFC 3339, or an age
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Of the traces read, this many at random (the same ones for the same --seed)
    #[arg(long, value_name = "N")]
    pub sample: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Only traces that went wrong (errors, or actions their rules forbid)
    #[arg(long)]
    pub incidents_only: bool,
    /// Take the target (command, http or model), rate limits and concurrency from this suite
    #[arg(long, value_name = "SUITE")]
    pub target_from: Option<String>,
    /// The least word agreement with production's reply a case asks for (0-1)
    #[arg(long, default_value_t = 0.5, value_name = "X")]
    pub min_similarity: f64,
    /// The suite written (list it in a stage's eval_suites to gate on replays)
    #[arg(long, default_value = "replay", value_name = "ID")]
    pub suite: String,
}

#[derive(Args, Debug)]
pub(crate) struct ExplainArgs {
    /// A trace file: JSON with trace_id (or id), tool_calls, output (or response), action
    #[arg(value_name = "TRACE_FILE")]
    pub trace_file: Option<PathBuf>,
    /// A trace in the trace store instead (its spans name the bundle version)
    #[arg(long, value_name = "ID")]
    pub trace_id: Option<String>,
    /// The bundle version the trace ran: ID@VERSION (or ID@ENV, ID==VERSION)
    #[arg(short = 'b', long, value_name = "ID@VERSION")]
    pub bundle: Option<String>,
    /// text for people, json for programs (the existing tool's keys)
    #[arg(short = 'f', long, value_enum, default_value = "text")]
    pub format: TextOrJson,
    /// Leave out influences below this confidence (the assessment is computed before)
    #[arg(long, default_value_t = 0.0, value_name = "X")]
    pub confidence_threshold: f64,
    /// Write the result to this file instead of stdout
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// offline: read the lines and rules (no model); ablation: run the
    /// trace's input again without each line (or random subsets of them) and
    /// measure which removals change the action (model calls; the number is
    /// printed before the first)
    #[arg(long, value_enum, default_value = "offline")]
    pub method: AttributionMethod,
    /// Ablation: the most calls made
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub budget: usize,
    /// Ablation: runs per variant when each line is left out in turn
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeats: u32,
    /// Ablation: run through this suite's target (default: the bundle's own model)
    #[arg(long, value_name = "SUITE")]
    pub target_from: Option<String>,
    /// Ablation: calls at once
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,
    /// Ablation: the seed of the random subsets
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Ablation: call the model even when the response cache has the answer
    #[arg(long)]
    pub no_cache: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum AttributionMethod {
    Offline,
    Ablation,
}

#[derive(Args, Debug)]
pub(crate) struct BatchArgs {
    /// A directory of trace files (*.json), or one file of JSON lines or a
    /// JSON array; without it, traces come from the trace store
    #[arg(value_name = "DIR|FILE")]
    pub source: Option<PathBuf>,
    /// The bundle version: ID@VERSION (required for files; for the store,
    /// which version's traces)
    #[arg(short = 'b', long, value_name = "ID@VERSION")]
    pub bundle: Option<String>,
    #[command(flatten)]
    pub stored: StoredTraces,
    #[arg(short = 'f', long, value_enum, default_value = "text")]
    pub format: TextOrJson,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TextOrJson {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub(crate) enum AnalyticsCmd {
    /// A version's metrics: sample size, error and success rate, latency
    /// mean/p50/p95/p99, tokens, cost, tools
    Metrics(AnalyticsMetricsArgs),
    /// Compare a candidate with a baseline: each metric by its test, Holm-
    /// corrected, with a verdict (regression, improvement, mixed,
    /// no_significant_change, insufficient_data)
    Compare(AnalyticsCompareArgs),
    /// A version's metrics as JSON (the existing tool's `analytics report`)
    Report(AnalyticsMetricsArgs),
}

#[derive(Args, Debug)]
pub(crate) struct AnalyticsMetricsArgs {
    /// ID@VERSION (or ID: every version)
    pub reference: String,
    #[command(flatten)]
    pub window: AnalyticsWindow,
    /// Also summarise this numeric span attribute, summed per trace (repeatable)
    #[arg(long, value_name = "NAME")]
    pub attribute: Vec<String>,
    /// text for people, json for programs (the same as --json)
    #[arg(short = 'f', long, value_enum, default_value = "text")]
    pub format: TextOrJson,
}

#[derive(Args, Debug, Clone, Default)]
pub(crate) struct AnalyticsWindow {
    /// Only traffic from this environment
    #[arg(long)]
    pub env: Option<String>,
    /// Only traces that started at or after: RFC 3339, or an age such as 24h, 7d
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only traces that started before: RFC 3339, or an age
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct AnalyticsCompareArgs {
    /// The baseline: ID@VERSION (or ID, with --baseline-env)
    pub baseline: String,
    /// The candidate: ID@VERSION (default: the baseline's bundle, with --candidate-env)
    pub candidate: Option<String>,
    #[command(flatten)]
    pub window: AnalyticsWindow,
    /// The baseline's environment (instead of --env)
    #[arg(long, value_name = "ENV")]
    pub baseline_env: Option<String>,
    /// The candidate's environment (instead of --env)
    #[arg(long, value_name = "ENV")]
    pub candidate_env: Option<String>,
    /// Fewer traces than this on either side gives insufficient_data
    #[arg(long, default_value_t = 30)]
    pub min_samples: u64,
    /// The family-wise error rate (after Holm's correction)
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Only these metrics (repeatable): error_rate, latency, latency_p95,
    /// latency_p99, input_tokens, output_tokens, cost, tool_distribution
    #[arg(long, value_name = "NAME")]
    pub metric: Vec<String>,
    /// Also compare this numeric span attribute, summed per trace (repeatable)
    #[arg(long, value_name = "NAME")]
    pub attribute: Vec<String>,
    /// Exit with status 3 when the verdict is a regression
    #[arg(long)]
    pub fail_on_regression: bool,
    /// text for people, json for programs (the same as --json)
    #[arg(short = 'f', long, value_enum, default_value = "text")]
    pub format: TextOrJson,
}

#[derive(Subcommand, Debug)]
pub(crate) enum MetricsCmd {
    /// Deployment frequency, lead time, change failure rate, time to restore
    /// and rework rate for one environment
    Dora {
        /// The environment (default: the last stage of the pipeline)
        #[arg(long)]
        env: Option<String>,
        /// The window, in days before now
        #[arg(long, default_value_t = 30.0)]
        days: f64,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum AgentCmd {
    /// Decide GO / NO_GO / DELAY for a release context, and remember it
    Decide(AgentDecideArgs),
    /// Record what happened after a decision: success, incident or rolled_back
    Outcome {
        /// The decision's id (`agent memory` lists them)
        decision_id: String,
        /// What happened after it
        #[arg(value_name = "success|incident|rolled_back")]
        outcome: String,
        /// What happened, in a few words
        #[arg(long)]
        note: Option<String>,
    },
    /// The heuristics learned from outcomes
    Heuristics {
        /// Include retired heuristics
        #[arg(long)]
        all: bool,
    },
    /// Learn the heuristics again now, from every outcome so far
    Reflect,
    /// Record the outcomes that are due: each agent-decided promotion past
    /// the watch window is an incident when its production traffic
    /// regressed against the version it replaced, a success when it was
    /// healthy (or, without enough traffic, when it was not rolled back).
    /// Promotions gated by the agent do this first on their own
    Settle,
    /// What the agent remembers, newest first
    Memory {
        /// How many episodes to show
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// The incident model learned from outcomes: how many, and how well
    /// its predictions matched (Brier score, reliability by decile) beside
    /// the fixed rules alone
    Model,
    /// Show one decision record in full
    Show {
        /// The decision's id (`agent memory` lists them)
        decision_id: String,
    },
    /// Run the agent on the prototype's scenarios, or on a stream of releases
    /// from an incident model, learning as it goes
    Simulate(AgentSimulateArgs),
}

#[derive(Args, Debug)]
pub(crate) struct AgentSimulateArgs {
    /// low-risk-monday, low-risk-weekday, low-risk-friday, low-risk-saturday,
    /// high-risk-friday, or all
    #[arg(long, conflicts_with = "stream")]
    pub scenario: Option<String>,
    /// Generate this many releases and print the learning curve beside the
    /// baselines "always GO" and "never on Fridays or weekends"
    #[arg(long)]
    pub stream: Option<u64>,
    /// The random seed of the generated stream (the same seed, the same stream)
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A JSON incident model (fields as in `--json` output's model)
    #[arg(long, value_name = "FILE")]
    pub model: Option<String>,
    /// Stretches of the stream in the learning curve
    #[arg(long, default_value_t = 10)]
    pub windows: u64,
}

#[derive(Args, Debug)]
pub(crate) struct AgentDecideArgs {
    /// The promotion to decide: ID VERSION ENV or ID@VERSION ENV (its context
    /// is read from the store: the diff against what is live, evals,
    /// criticality, time, clashes)
    #[arg(num_args = 0..=3, value_name = "ID VERSION ENV")]
    pub target: Vec<String>,
    /// Or a JSON file with the context, e.g. {"env": "prod", "feature_risk":
    /// "HIGH", "service_criticality": "HIGH", "day_of_week": "FRI",
    /// "hour_of_day": 16, "clash": true}; `-` reads standard input
    #[arg(long, value_name = "FILE", conflicts_with = "target")]
    pub context: Option<String>,
    /// Let a HIGH red-team risk level turn a GO into a DELAY
    #[arg(long)]
    pub red_team_blocks: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum BundleCmd {
    /// Create an immutable bundle version from prompts, policies and a model config
    Create(CreateArgs),
    /// List bundles, their versions and where they are deployed
    List,
    /// Show a bundle version's manifest: `inspect ID [VERSION]`, `ID@VERSION`,
    /// `ID@ENV` (what ENV runs) or `ID==VERSION`
    Inspect {
        /// The bundle, and optionally its version (default: the highest)
        #[arg(num_args = 1..=2, required = true, value_name = "ID [VERSION]")]
        reference: Vec<String>,
        /// Version (or give it positionally)
        #[arg(short = 'v', long)]
        version: Option<String>,
    },
    /// Re-hash every artifact of a bundle version and check its bundle hash
    Verify {
        /// The bundle, and optionally its version (default: the highest);
        /// ID@VERSION, ID@ENV and ID==VERSION work too
        #[arg(num_args = 1..=2, required = true, value_name = "ID [VERSION]")]
        reference: Vec<String>,
        /// Version (or give it positionally)
        #[arg(short = 'v', long)]
        version: Option<String>,
    },
    /// Show what changed between two versions: `diff ID V1 V2`, or two
    /// references such as `diff ID@1.0.0 ID@1.1.0` or `diff ID@prod ID@staging`
    Diff {
        /// ID V1 V2, or two references (ID@VERSION, ID@ENV, ID==VERSION)
        #[arg(num_args = 2..=3, required = true, value_name = "ID V1 V2")]
        args: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub(crate) struct CreateArgs {
    /// Bundle id, e.g. support-agent
    pub name: String,
    /// Bundle version (immutable once created)
    #[arg(short = 'v', long, default_value = "1.0.0")]
    pub version: String,
    /// Prompt: ROLE=PROMPT_ID[:VERSION] (promptops, from git) or ROLE=file:PATH
    #[arg(short = 'a', long = "artifact", value_name = "SPEC")]
    pub artifacts: Vec<String>,
    /// Policy: ROLE=PATH (relative to the repository root)
    #[arg(long = "policy", value_name = "ROLE=PATH")]
    pub policies: Vec<String>,
    /// Model id; without it the bundle has no model config
    #[arg(short = 'm', long)]
    pub model: Option<String>,
    /// The model's provider: openai, anthropic, gemini or openai-compatible
    /// (default: inferred from a well-known model name, e.g. gpt-4o -> openai)
    #[arg(long)]
    pub provider: Option<String>,
    /// Sampling temperature, 0.0 to 2.0
    #[arg(short = 't', long, default_value_t = 0.7)]
    pub temperature: f64,
    /// The most tokens the model may answer with
    #[arg(long, default_value_t = 4096)]
    pub max_tokens: u64,
    /// Extra model parameter: KEY=VALUE (VALUE is JSON if it parses, else a string)
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// What this version changes, in a few words
    #[arg(short = 'd', long, default_value = "")]
    pub description: String,
}

#[derive(Subcommand, Debug)]
pub(crate) enum EnvCmd {
    /// What runs where (or, with --at, what ran where at that moment)
    List {
        /// A past moment, e.g. 2026-11-21T14:05:00Z or 2026-11-21
        #[arg(long, value_name = "TIMESTAMP")]
        at: Option<String>,
    },
    /// Show one environment file
    Get {
        /// The environment
        env: String,
    },
    /// Add an environment to the pipeline
    Create(EnvCreateArgs),
    /// Set keys of an environment's promotion policy, checked as the file is
    /// (a misspelt key or a wrong type is an error) and recorded, e.g.
    /// `env set prod requires_eval=true eval_suites=[smoke] soak_hours=24`;
    /// `KEY=` removes a key
    Set {
        /// The environment
        env: String,
        /// KEY=VALUE, the value in YAML (true, 24, [a, b], {...})
        #[arg(required = true, value_name = "KEY=VALUE")]
        settings: Vec<String>,
    },
    /// Events in one environment, newest first
    History {
        /// The environment
        env: String,
        /// How many events to show
        #[arg(short = 'n', long, default_value_t = 10)]
        limit: usize,
    },
}

#[derive(Args, Debug)]
pub(crate) struct EnvCreateArgs {
    /// The new environment's name (a word, not a version: `ID@X` means a
    /// version when X looks like one)
    pub name: String,
    /// Place it after this environment (default: at the end)
    #[arg(long)]
    pub after: Option<String>,
    /// Place it before this environment
    #[arg(long)]
    pub before: Option<String>,
    /// Promotions here need a passing eval report for the exact bundle hash
    #[arg(long)]
    pub requires_eval: bool,
    /// Promotions here need approvals (see --min-approvals)
    #[arg(long)]
    pub requires_approval: bool,
    /// A team (from config.yaml `teams:`) whose members may approve (repeatable)
    #[arg(long = "approval-team", value_name = "TEAM")]
    pub approval_teams: Vec<String>,
    /// A person who may approve, `Name <email>` or an email (repeatable)
    #[arg(long = "approver", value_name = "ACTOR")]
    pub approvers: Vec<String>,
    /// How many distinct people must approve (default 1)
    #[arg(long)]
    pub min_approvals: Option<u32>,
    /// Hours a version must have run in the stage before, measured from the history
    #[arg(long, default_value_t = 0.0)]
    pub soak_hours: f64,
}

#[derive(Args, Debug)]
pub(crate) struct PromoteArgs {
    /// ID VERSION ENV, or ID@VERSION ENV (ID@ENV2 ENV promotes what ENV2
    /// runs); the existing tool's `promote promote ID VERSION ENV` and
    /// `promote rollback ENV ID` are accepted too
    #[arg(num_args = 2..=4, required = true, value_name = "ID VERSION ENV")]
    pub args: Vec<String>,
    /// Why (recorded; required with --skip-gates)
    #[arg(short = 'r', long)]
    pub reason: Option<String>,
    /// Bypass the gates that may be overridden: eval, approval, signed
    /// approvals, soak, freeze and the agent (never the pipeline order or a
    /// rejection). Needs --reason; recorded as an override.
    #[arg(long)]
    pub skip_gates: bool,
    /// Evaluate the gates and report, change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// First run the environment's required eval suites that have no report for this bundle
    #[arg(long)]
    pub run_evals: bool,
    /// When only time gates block it (soak, a freeze window, the agent's
    /// DELAY), wait until they pass and then promote
    #[arg(long)]
    pub wait: bool,
    /// The longest --wait waits, e.g. 90s, 30m, 2h (default 1h)
    #[arg(long, value_name = "DURATION", requires = "wait")]
    pub timeout: Option<String>,
    #[arg(short = 's', long, hide = true)]
    pub steps: Option<u32>,
    #[arg(long, hide = true)]
    pub to: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct InitArgs {
    /// Start from a template: `gated` makes prod require a passing eval, an
    /// approval and a soak in staging, and adds a sample agent, prompt,
    /// policy and eval suite (files that exist are left alone)
    #[arg(long, value_enum)]
    pub template: Option<Template>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Template {
    /// prod behind eval, approval and soak gates, with a sample project
    Gated,
}

#[derive(Args, Debug)]
pub(crate) struct StatusArgs {
    /// Keep the screen up to date: redraw whenever the store changes (and
    /// every --interval seconds, as time gates count down); with --json,
    /// one JSON document per line
    #[arg(long)]
    pub watch: bool,
    /// Seconds between looks at the store while watching
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub interval: f64,
}

#[derive(Args, Debug)]
pub(crate) struct SyncArgs {
    /// Turn sync on with this git remote (written to .releaseops/config.yaml),
    /// then sync
    #[arg(long, value_name = "REMOTE")]
    pub enable: Option<String>,
    /// The remote branch that holds the store (with --enable; default
    /// releaseops-state, written without a checkout)
    #[arg(long, value_name = "BRANCH", requires = "enable")]
    pub branch: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct ApproveArgs {
    /// ID VERSION ENV, or ID@VERSION ENV (ID@ENV2 ENV: what ENV2 runs)
    #[arg(num_args = 2..=3, required = true, value_name = "ID VERSION ENV")]
    pub args: Vec<String>,
    /// A comment, recorded with the approval
    #[arg(short = 'c', long)]
    pub comment: Option<String>,
    /// Sign the approval with your SSH key (checked against
    /// .releaseops/allowed_signers); policies can require signed approvals
    #[arg(long)]
    pub sign: bool,
    /// The SSH key to sign with (implies --sign; default
    /// $RELEASEOPS_SIGNING_KEY, then git's user.signingkey)
    #[arg(long, value_name = "PATH")]
    pub key: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct RejectArgs {
    /// ID VERSION, or ID@VERSION (ID@ENV: what ENV runs)
    #[arg(num_args = 1..=2, required = true, value_name = "ID VERSION")]
    pub args: Vec<String>,
    /// Reject for one environment only (default: everywhere)
    #[arg(long)]
    pub env: Option<String>,
    /// Why it is rejected (recorded)
    #[arg(short = 'r', long, required = true)]
    pub reason: String,
}

#[derive(Args, Debug)]
pub(crate) struct RollbackArgs {
    /// The environment to roll back
    pub env: String,
    /// The bundle to roll back there
    pub id: String,
    /// Go back N versions (default 1)
    #[arg(short = 's', long)]
    pub steps: Option<u32>,
    /// Go back to this version (it must have been live here before the current one)
    #[arg(long)]
    pub to: Option<String>,
    /// Why (recorded)
    #[arg(short = 'r', long)]
    pub reason: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct HistoryArgs {
    /// `verify` checks the chain and that environments match it
    #[arg(value_parser = ["verify"])]
    pub action: Option<String>,
    /// Only records of this bundle
    #[arg(long)]
    pub bundle: Option<String>,
    /// Only records of this environment
    #[arg(long)]
    pub env: Option<String>,
    /// Only records of this kind, as history labels them: promote (every
    /// promotion), override, rollback, approve, reject, create, env, eval
    #[arg(long)]
    pub event: Option<String>,
    /// Only records by this person (`Name <email>`, an email or a name);
    /// not `--actor`, which says who is acting
    #[arg(long, value_name = "PERSON")]
    pub by: Option<String>,
    /// Only records at or after this time (RFC 3339)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only records before this time (RFC 3339)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// How many records to show, newest first (0: all)
    #[arg(short = 'n', long, default_value_t = 20)]
    pub limit: usize,
}

#[derive(Subcommand, Debug)]
pub(crate) enum EvalCmd {
    /// Write a new suite scaffold to .releaseops/evals/<suite>.yaml
    Create {
        /// The new suite's id
        suite: String,
    },
    /// List suites
    List,
    /// Run a suite against a bundle version and save the report
    Run(EvalRunArgs),
    /// Show a saved report: a run id, or the latest for --bundle [--version] [--suite]
    Report(EvalReportArgs),
    /// Compare the newest runs of a suite on two versions, case by case (exact McNemar test)
    Compare(EvalCompareArgs),
    /// Turn another tool's tests into a suite: `eval import promptfoo
    /// promptfooconfig.yaml`; whatever cannot be translated is listed
    Import {
        /// The tool the file comes from
        #[arg(value_enum)]
        from: ImportFrom,
        /// Its config file
        file: PathBuf,
        /// The new suite's id (default: promptfoo)
        #[arg(long, default_value = "promptfoo")]
        suite: String,
    },
}

#[derive(Args, Debug)]
pub(crate) struct EvalCompareArgs {
    /// The suite whose runs are compared
    pub suite: String,
    /// The bundle
    #[arg(short = 'b', long)]
    pub bundle: String,
    /// The version to compare against
    #[arg(long, conflicts_with = "baseline_env")]
    pub baseline: Option<String>,
    /// Compare against the version live in this environment
    #[arg(long, value_name = "ENV")]
    pub baseline_env: Option<String>,
    /// The version under test (default: the highest)
    #[arg(long)]
    pub candidate: Option<String>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum ImportFrom {
    /// promptfoo's promptfooconfig.yaml: tests, vars, assert
    Promptfoo,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ReportFormat {
    Summary,
    Markdown,
    Json,
    Junit,
    Yaml,
    Html,
}

#[derive(Args, Debug)]
pub(crate) struct EvalRunArgs {
    /// The suite (a file in .releaseops/evals/, without .yaml)
    pub suite: String,
    /// The bundle and optionally its version: ID [VERSION], ID@VERSION,
    /// ID@ENV (what ENV runs) or ID==VERSION (default version: the highest)
    #[arg(num_args = 0..=2, value_name = "ID [VERSION]")]
    pub target: Vec<String>,
    /// The bundle (or a reference such as ID@1.2.0), instead of positionally
    #[arg(short = 'b', long)]
    pub bundle: Option<String>,
    /// Version (default: the highest)
    #[arg(short = 'v', long)]
    pub version: Option<String>,
    /// Cases run at once (default: the suite's, else 8)
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Runs per case; the case verdict is the majority (default: the suite's)
    #[arg(long)]
    pub repeats: Option<u32>,
    /// Only cases with this tag (repeatable)
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// How to print the report (machine formats print only the document)
    #[arg(short = 'f', long, value_enum, default_value = "summary")]
    pub format: ReportFormat,
    /// Also write the report in --format to this file
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Do not save the report (it then cannot pass a gate)
    #[arg(long)]
    pub no_save: bool,
    /// Call the model even when the response cache has the answer
    #[arg(long)]
    pub no_cache: bool,
    /// Also run the suite on the version live in ENV and compare case by case
    #[arg(long, value_name = "ENV")]
    pub baseline: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct EvalReportArgs {
    /// A run id (or a report file's name)
    pub run_id: Option<String>,
    /// Reports of this bundle (ID, or ID@VERSION, ID@ENV, ID==VERSION)
    #[arg(short = 'b', long)]
    pub bundle: Option<String>,
    /// Reports of this version
    #[arg(short = 'v', long)]
    pub version: Option<String>,
    /// Reports of this suite
    #[arg(long)]
    pub suite: Option<String>,
    /// How to print the report
    #[arg(short = 'f', long, value_enum, default_value = "yaml")]
    pub format: ReportFormat,
    /// Write the report in --format to this file instead of stdout
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// List the saved runs that match (oldest first) instead of showing one
    #[arg(long)]
    pub list: bool,
}

#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// Build the sample project here and keep it (default: a temporary directory, removed afterwards)
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}
