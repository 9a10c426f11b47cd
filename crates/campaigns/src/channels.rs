//! Distribution: one HTTP webhook per channel type, called with a timeout and behind a circuit
//! breaker per channel.
//!
//! A channel is `POST {url}` with the campaign as JSON; a 2xx answer with
//! `{"distributionId": "...", "estimatedReach": n}` is SUCCESS, anything else FAILED with the
//! reason. After `failures_to_open` failures in a row a channel's circuit opens: for `open_for`
//! calls fail at once ("circuit open") without reaching the channel; then one call is let
//! through, and its outcome closes the circuit or opens it again. Redirects are not followed.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use issuance_core::enums::{ChannelType, DistributionStatus};
use serde::{Deserialize, Serialize};

/// How channels are reached. Its `Debug` names the configured channels, not their URLs (a
/// webhook URL often carries a token).
#[derive(Clone)]
pub struct ChannelConfig {
    /// Each channel's webhook URL.
    pub urls: HashMap<ChannelType, String>,
    /// Bound on one call.
    pub timeout: Duration,
    /// Failures in a row that open a channel's circuit.
    pub failures_to_open: u32,
    /// How long an open circuit refuses calls.
    pub open_for: Duration,
}

impl std::fmt::Debug for ChannelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut configured: Vec<&str> = self.urls.keys().map(|c| c.as_str()).collect();
        configured.sort_unstable();
        f.debug_struct("ChannelConfig")
            .field("configured", &configured)
            .field("timeout", &self.timeout)
            .field("failures_to_open", &self.failures_to_open)
            .field("open_for", &self.open_for)
            .finish()
    }
}

impl ChannelConfig {
    /// Each channel at `{base}/channels/{CHANNEL_TYPE}` (how `workers receiver` serves them).
    pub fn under(base: &str) -> HashMap<ChannelType, String> {
        ChannelType::ALL
            .iter()
            .map(|c| {
                (
                    *c,
                    format!("{}/channels/{}", base.trim_end_matches('/'), c.as_str()),
                )
            })
            .collect()
    }
}

/// What a channel is sent.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The campaign.
    pub campaign_id: uuid::Uuid,
    /// The channel.
    pub channel_type: ChannelType,
    /// Title.
    pub title: String,
    /// Prize.
    pub prize: String,
    /// How to take part.
    pub participation_method: String,
    /// The banner's URL.
    pub image_url: Option<String>,
    /// First day.
    pub start_date: Option<chrono::NaiveDate>,
    /// Last day.
    pub end_date: Option<chrono::NaiveDate>,
    /// Where participants claim the prize (the engine's issue route).
    pub claim_url: String,
    /// The owner's settings for this channel.
    pub settings: serde_json::Value,
}

/// A channel's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The channel.
    pub channel_type: ChannelType,
    /// SUCCESS or FAILED.
    pub status: DistributionStatus,
    /// The channel's id of the distribution.
    pub distribution_id: Option<String>,
    /// The channel's estimate.
    pub estimated_reach: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Accepted {
    distribution_id: String,
    #[serde(default)]
    estimated_reach: Option<i64>,
}

#[derive(Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
    trial_running: bool,
}

/// Calls channels.
pub struct Distributor {
    cfg: ChannelConfig,
    http: reqwest::Client,
    breakers: Mutex<HashMap<ChannelType, Breaker>>,
}

/// Whether a call may go out now.
enum Gate {
    Closed,
    Trial,
    Open,
}

impl Distributor {
    /// A distributor for `cfg`.
    pub fn new(cfg: ChannelConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client with rustls builds");
        Self {
            cfg,
            http,
            breakers: Mutex::new(HashMap::new()),
        }
    }

    fn gate(&self, channel: ChannelType) -> Gate {
        let mut all = self.breakers.lock().expect("breaker lock");
        let b = all.entry(channel).or_default();
        match b.open_until {
            None => Gate::Closed,
            Some(until) if Instant::now() < until => Gate::Open,
            Some(_) if b.trial_running => Gate::Open,
            Some(_) => {
                b.trial_running = true;
                Gate::Trial
            }
        }
    }

    fn record(&self, channel: ChannelType, ok: bool) {
        let mut all = self.breakers.lock().expect("breaker lock");
        let b = all.entry(channel).or_default();
        b.trial_running = false;
        if ok {
            *b = Breaker::default();
            return;
        }
        b.failures += 1;
        if b.failures >= self.cfg.failures_to_open || b.open_until.is_some() {
            b.open_until = Some(Instant::now() + self.cfg.open_for);
            metrics::counter!("issuer_channel_circuit_opened_total", "channel" => channel.as_str())
                .increment(1);
        }
    }

    /// Sends one delivery to its channel.
    pub async fn send(&self, d: &Delivery) -> Outcome {
        let channel = d.channel_type;
        let failed = |why: String| Outcome {
            channel_type: channel,
            status: DistributionStatus::Failed,
            distribution_id: None,
            estimated_reach: None,
            error: Some(why),
        };
        let Some(url) = self.cfg.urls.get(&channel) else {
            return failed("이 채널의 주소가 설정되지 않았습니다.".into());
        };
        if let Gate::Open = self.gate(channel) {
            metrics::counter!("issuer_channel_calls_total", "channel" => channel.as_str(), "outcome" => "circuit_open")
                .increment(1);
            return failed("채널 장애로 호출을 잠시 중단했습니다 (circuit open).".into());
        }
        let result = async {
            let resp = self.http.post(url).json(d).send().await.map_err(|e| {
                if e.is_timeout() {
                    format!("채널 응답 시간 초과 ({} ms)", self.cfg.timeout.as_millis())
                } else {
                    format!("채널에 연결할 수 없습니다: {e}")
                }
            })?;
            let status = resp.status();
            if !status.is_success() {
                return Err(format!("채널이 {status}로 답했습니다."));
            }
            resp.json::<Accepted>()
                .await
                .map_err(|e| format!("채널의 응답을 읽을 수 없습니다: {e}"))
        }
        .await;
        self.record(channel, result.is_ok());
        let outcome = if result.is_ok() { "success" } else { "failed" };
        metrics::counter!("issuer_channel_calls_total", "channel" => channel.as_str(), "outcome" => outcome)
            .increment(1);
        match result {
            Ok(a) => Outcome {
                channel_type: channel,
                status: DistributionStatus::Success,
                distribution_id: Some(a.distribution_id),
                estimated_reach: a.estimated_reach,
                error: None,
            },
            Err(why) => failed(why),
        }
    }

    /// Sends every delivery at once; outcomes in the same order.
    pub async fn send_all(&self, deliveries: &[Delivery]) -> Vec<Outcome> {
        futures::future::join_all(deliveries.iter().map(|d| self.send(d))).await
    }
}
