//! The model client the agent uses when a provider is configured.

use super::*;

/// The model configured in `agent.llm`, if any.
pub(super) fn llm_of(ctx: &Ctx<'_>) -> Option<ProviderLlm> {
    ctx.store
        .config()
        .agent
        .as_ref()
        .and_then(|a| a.llm.as_ref())
        .and_then(|cfg| ProviderLlm::from_config(cfg, ctx.runtime.and_then(|r| r.handle())))
}

/// The language model configured in `agent.llm`, through the evaluation
/// engine's provider clients. A configuration that cannot work (no key)
/// still answers, with an error, so decisions fail closed instead of
/// silently losing the model.
pub struct ProviderLlm {
    provider: releaseops_eval::providers::Provider,
    model: String,
    base_url: String,
    key: Result<Option<String>, String>,
    timeout: std::time::Duration,
    /// All the calls for one decision share this: the store lock is held
    /// while the agent decides, and other writers wait at most a minute.
    deadline: std::time::Instant,
    /// The caller's async runtime (the model call is made on it).
    runtime: Option<tokio::runtime::Handle>,
}

/// The most a decision may spend waiting on the model, all calls together.
pub(super) const LLM_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

impl ProviderLlm {
    pub fn from_config(
        cfg: &releaseops_format::config::AgentLlm,
        runtime: Option<tokio::runtime::Handle>,
    ) -> Option<ProviderLlm> {
        use releaseops_eval::providers::Provider;
        let provider = Provider::parse(&cfg.provider)?;
        let (var, required) = provider.key_var();
        let key = match std::env::var(var) {
            Ok(k) if !k.trim().is_empty() => Ok(Some(k)),
            _ if required => Err(format!(
                "agent.llm uses {} but {var} is not set",
                provider.name()
            )),
            _ => Ok(None),
        };
        let base_url = cfg
            .base_url
            .clone()
            .or_else(|| std::env::var(provider.base_url_var()).ok())
            .unwrap_or_else(|| provider.default_base_url().to_string());
        // config.yaml is anyone's who can commit: its base_url gets the key
        // only when the environment names the same URL.
        let key = key.and_then(|k| {
            provider.key_for(
                k,
                &base_url,
                cfg.base_url.as_ref().map(|_| "agent.llm.base_url"),
            )
        });
        Some(ProviderLlm {
            provider,
            model: cfg.model.clone(),
            base_url,
            key,
            timeout: std::time::Duration::from_millis(cfg.timeout_ms.unwrap_or(10_000))
                .min(LLM_BUDGET),
            deadline: std::time::Instant::now() + LLM_BUDGET,
            runtime,
        })
    }
}

impl releaseops_agent::llm::Llm for ProviderLlm {
    fn name(&self) -> String {
        format!("{} {}", self.provider.name(), self.model)
    }

    fn ask(&self, prompt: &releaseops_agent::llm::Prompt) -> Result<String, String> {
        use releaseops_eval::providers::{Chat, RetryPolicy, chat, http_client};
        let key = self.key.clone()?;
        let left = self
            .deadline
            .saturating_duration_since(std::time::Instant::now())
            .min(self.timeout);
        if left.is_zero() {
            return Err(format!(
                "the {} s allowed for the model per decision are spent",
                LLM_BUDGET.as_secs()
            ));
        }
        let runtime = self
            .runtime
            .as_ref()
            .ok_or("no async runtime was given for the model call")?;
        let c = Chat {
            model: self.model.clone(),
            system: prompt.system.clone(),
            user: prompt.user.clone(),
            temperature: Some(0.0),
            max_tokens: 800,
            parameters: Default::default(),
            tools: Vec::new(),
        };
        let policy = RetryPolicy {
            max_retries: 2,
            base: std::time::Duration::from_millis(200),
            cap: std::time::Duration::from_secs(5),
        };
        runtime.block_on(async {
            let client = http_client()?;
            match tokio::time::timeout(
                left,
                chat(
                    &client,
                    self.provider,
                    &self.base_url,
                    key.as_deref(),
                    &c,
                    policy,
                ),
            )
            .await
            {
                Ok(answer) => answer.map(|a| a.output),
                Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
            }
        })
    }
}
