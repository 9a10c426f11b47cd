//! Three event recommendations for a draft: the [`Recommender`] trait and its two
//! implementations, the deterministic [`Builtin`] (the default, no external service) and
//! [`ChatCompletions`], a client of any OpenAI-compatible chat-completions service.

use std::time::Duration;

use futures::future::BoxFuture;
use issuance_core::enums::CampaignObjective;
use serde::Deserialize;
use serde_json::json;

use crate::model::{Complaints, Recommendation, StoreInfo, objective_label};

/// What a recommender is told about a draft.
#[derive(Clone, Debug)]
pub struct Brief {
    /// What the campaign is for.
    pub objective: CampaignObjective,
    /// The store.
    pub store: StoreInfo,
}

/// Why no recommendations came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecommendError {
    /// The service could not be reached or kept failing (after retries).
    #[error("{0}")]
    Unavailable(String),
    /// The service answered something that is not three valid recommendations.
    #[error("{0}")]
    BadAnswer(String),
}

/// Where recommendations come from.
pub trait Recommender: Send + Sync {
    /// Its name, for logs and the job result.
    fn name(&self) -> &'static str;

    /// Exactly three recommendations for `brief`, each valid by the seed's rules.
    fn recommend<'a>(
        &'a self,
        brief: &'a Brief,
    ) -> BoxFuture<'a, Result<Vec<Recommendation>, RecommendError>>;
}

// ---------------------------------------------------------------------------------------------
// The built-in recommender.

/// What kind of business an industry text names (by keywords; anything else is `General`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trade {
    /// 카페, 커피, 베이커리, 디저트.
    Cafe,
    /// 식당, 음식, 치킨, 피자, 분식 …
    Restaurant,
    /// 미용, 헤어, 네일, 뷰티, 피부.
    Beauty,
    /// 의류, 옷, 패션, 잡화.
    Fashion,
    /// 헬스, 필라테스, 요가, 피트니스.
    Fitness,
    /// 학원, 교육, 공부방.
    Education,
    /// Anything else.
    General,
}

/// Per trade: the prize item, its unit cost (KRW) and the average spend of a visit (KRW).
struct TradeFacts {
    item: &'static str,
    unit_cost: i64,
    average_spend: i64,
}

impl Trade {
    /// Reads the free-text industry.
    pub fn of(industry: &str) -> Self {
        let s = industry.to_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| s.contains(w));
        if has(&[
            "카페",
            "커피",
            "베이커리",
            "빵",
            "디저트",
            "cafe",
            "coffee",
            "bakery",
        ]) {
            Trade::Cafe
        } else if has(&[
            "식당",
            "음식",
            "치킨",
            "피자",
            "분식",
            "한식",
            "중식",
            "일식",
            "고기",
            "주점",
            "레스토랑",
            "restaurant",
            "food",
        ]) {
            Trade::Restaurant
        } else if has(&["미용", "헤어", "네일", "뷰티", "피부", "beauty", "hair", "nail"]) {
            Trade::Beauty
        } else if has(&["의류", "옷", "패션", "잡화", "fashion", "clothing"]) {
            Trade::Fashion
        } else if has(&["헬스", "필라테스", "요가", "피트니스", "gym", "fitness", "yoga"]) {
            Trade::Fitness
        } else if has(&["학원", "교육", "공부", "academy", "education"]) {
            Trade::Education
        } else {
            Trade::General
        }
    }

    fn facts(self) -> TradeFacts {
        let (item, unit_cost, average_spend) = match self {
            Trade::Cafe => ("아메리카노", 1_500, 7_000),
            Trade::Restaurant => ("대표 메뉴", 6_000, 18_000),
            Trade::Beauty => ("클리닉 케어", 10_000, 40_000),
            Trade::Fashion => ("할인 상품권", 5_000, 45_000),
            Trade::Fitness => ("1일 체험권", 5_000, 60_000),
            Trade::Education => ("무료 체험 수업", 10_000, 150_000),
            Trade::General => ("감사 선물", 3_000, 20_000),
        };
        TradeFacts {
            item,
            unit_cost,
            average_spend,
        }
    }
}

/// The built-in recommender: templates per objective × trade, estimates from a small model.
///
/// For the three tiers `t` (0 = many small prizes, 1 = a middle prize, 2 = one grand prize):
///
/// * participants `P = round(BASE_REACH × objective_pull × tier_pull[t])` with `BASE_REACH`
///   400 (people a neighbourhood store reaches in an event's run), `objective_pull` NEW_CUSTOMER
///   1.2, REVISIT 0.8, SALES_INCREASE 1.0, BRAND_AWARENESS 1.5, and `tier_pull` 1.0, 1.3, 1.8
///   (a bigger prize draws more people);
/// * prizes `Q = max(1, round(P × win_share[t]))` with `win_share` 0.30, 0.10, 0.01;
/// * cost `C = Q × unit_cost × tier_value[t] + 50,000` (`tier_value` 1, 3, 20; 50,000 KRW of
///   printing and posting);
/// * revenue `R = P × conversion × visits × average_spend`, with `conversion` (share of
///   participants who buy) NEW_CUSTOMER 0.25, REVISIT 0.40, SALES_INCREASE 0.35,
///   BRAND_AWARENESS 0.15 and `visits` REVISIT 2.0, else 1.0;
/// * ROI `= (R − C) / C × 100`, rounded to one decimal.
///
/// `unit_cost` and `average_spend` come from the trade read off the industry text (e.g. a cafe:
/// 1,500 and 7,000 KRW). Same brief, same answer.
#[derive(Clone, Copy, Debug, Default)]
pub struct Builtin;

const BASE_REACH: f64 = 400.0;
const TIER_PULL: [f64; 3] = [1.0, 1.3, 1.8];
const WIN_SHARE: [f64; 3] = [0.30, 0.10, 0.01];
const TIER_VALUE: [i64; 3] = [1, 3, 20];
const FIXED_COST: i64 = 50_000;

fn objective_pull(o: CampaignObjective) -> f64 {
    match o {
        CampaignObjective::NewCustomer => 1.2,
        CampaignObjective::Revisit => 0.8,
        CampaignObjective::SalesIncrease => 1.0,
        CampaignObjective::BrandAwareness => 1.5,
    }
}

fn conversion(o: CampaignObjective) -> (f64, f64) {
    match o {
        CampaignObjective::NewCustomer => (0.25, 1.0),
        CampaignObjective::Revisit => (0.40, 2.0),
        CampaignObjective::SalesIncrease => (0.35, 1.0),
        CampaignObjective::BrandAwareness => (0.15, 1.0),
    }
}

/// Title, prize and participation method of tier `t` for an objective (`{store}` and `{item}`
/// filled in).
fn template(o: CampaignObjective, t: usize) -> (&'static str, &'static str, &'static str) {
    use CampaignObjective::*;
    match (o, t) {
        (NewCustomer, 0) => (
            "{store} 첫 방문 선착순 이벤트",
            "{item} 무료 쿠폰",
            "처음 방문한 고객이 이벤트 페이지에서 응모하면 선착순으로 지급",
        ),
        (NewCustomer, 1) => (
            "{store} 친구 초대 이벤트",
            "{item} 3회 이용권",
            "친구와 함께 방문해 이벤트 페이지에서 응모하면 선착순 지급",
        ),
        (NewCustomer, _) => (
            "{store} 오픈 기념 골든티켓",
            "{item} 1년 이용권",
            "이벤트 페이지에서 응모, 골든티켓 당첨자에게 지급",
        ),
        (Revisit, 0) => (
            "{store} 다시 오면 선물",
            "{item} 무료 쿠폰",
            "재방문 고객이 이벤트 페이지에서 응모하면 선착순 지급",
        ),
        (Revisit, 1) => (
            "{store} 단골 스탬프 이벤트",
            "{item} 3회 이용권",
            "스탬프를 모은 고객이 이벤트 페이지에서 응모하면 선착순 지급",
        ),
        (Revisit, _) => (
            "{store} 단골 골든티켓",
            "{item} 6개월 이용권",
            "재방문 고객 중 골든티켓 당첨자에게 지급",
        ),
        (SalesIncrease, 0) => (
            "{store} 구매 감사 이벤트",
            "{item} 무료 쿠폰",
            "구매 영수증을 확인한 뒤 이벤트 페이지에서 응모하면 선착순 지급",
        ),
        (SalesIncrease, 1) => (
            "{store} 세트 구매 이벤트",
            "{item} 3회 이용권",
            "세트 메뉴·상품을 구매하고 응모하면 선착순 지급",
        ),
        (SalesIncrease, _) => (
            "{store} 구매 골든티켓",
            "{item} 1년 이용권",
            "구매 고객 중 골든티켓 당첨자에게 지급",
        ),
        (BrandAwareness, 0) => (
            "{store} SNS 인증 이벤트",
            "{item} 무료 쿠폰",
            "매장 사진을 SNS에 올리고 이벤트 페이지에서 응모하면 선착순 지급",
        ),
        (BrandAwareness, 1) => (
            "{store} 해시태그 이벤트",
            "{item} 3회 이용권",
            "해시태그와 함께 후기를 올리고 응모하면 선착순 지급",
        ),
        (BrandAwareness, _) => (
            "{store} 골든티켓 대축제",
            "{item} 1년 이용권",
            "이벤트 페이지에서 응모, 골든티켓 당첨자에게 지급",
        ),
    }
}

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

impl Builtin {
    /// The three recommendations (see the type's doc for the model).
    pub fn recommendations(brief: &Brief) -> Vec<Recommendation> {
        let facts = Trade::of(&brief.store.industry).facts();
        let (convert, visits) = conversion(brief.objective);
        (0..3)
            .map(|t| {
                let (title, prize, method) = template(brief.objective, t);
                let fill = |s: &str| {
                    s.replace("{store}", brief.store.store_name.trim())
                        .replace("{item}", facts.item)
                };
                let participants = (BASE_REACH * objective_pull(brief.objective) * TIER_PULL[t]).round();
                let prizes = ((participants * WIN_SHARE[t]).round() as i64).max(1);
                let cost = prizes * facts.unit_cost * TIER_VALUE[t] + FIXED_COST;
                let revenue = participants * convert * visits * facts.average_spend as f64;
                let roi = ((revenue - cost as f64) / cost as f64 * 1000.0).round() / 10.0;
                Recommendation {
                    title: clip(&fill(title), 50),
                    prize: clip(&fill(prize), 100),
                    participation_method: clip(&fill(method), 200),
                    estimated_cost: cost,
                    estimated_participants: participants as i64,
                    estimated_roi: roi,
                    suggested_quantity: prizes,
                }
            })
            .collect()
    }
}

impl Recommender for Builtin {
    fn name(&self) -> &'static str {
        "builtin"
    }

    fn recommend<'a>(
        &'a self,
        brief: &'a Brief,
    ) -> BoxFuture<'a, Result<Vec<Recommendation>, RecommendError>> {
        Box::pin(async move { Ok(Self::recommendations(brief)) })
    }
}

// ---------------------------------------------------------------------------------------------
// The chat-completions client.

/// Where and how to reach an OpenAI-compatible service. Its `Debug` (the workers log their
/// configuration at start) hides the key.
#[derive(Clone)]
pub struct ChatConfig {
    /// Base URL, e.g. `https://api.openai.com/v1` (`/chat/completions` is appended).
    pub url: String,
    /// Model name.
    pub model: String,
    /// API key (sent as a bearer token), if the service wants one.
    pub api_key: Option<String>,
    /// Bound on one attempt.
    pub timeout: Duration,
    /// Attempts after the first, for timeouts, connection errors, 429 and 5xx.
    pub retries: u32,
}

impl std::fmt::Debug for ChatConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatConfig")
            .field("url", &issuance_core::config::redact(&self.url))
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .finish()
    }
}

/// A client of an OpenAI-compatible chat-completions service. The answer is constrained by a
/// JSON schema (`response_format: json_schema`, strict) and checked again here: three
/// recommendations within the seed's limits, or the job fails with what was wrong.
pub struct ChatCompletions {
    cfg: ChatConfig,
    http: reqwest::Client,
}

impl ChatCompletions {
    /// A client for `cfg`.
    pub fn new(cfg: ChatConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client with rustls builds");
        Self { cfg, http }
    }

    /// The JSON schema the answer must follow.
    pub fn answer_schema() -> serde_json::Value {
        let item = json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["title", "prize", "participationMethod", "estimatedCost",
                         "estimatedParticipants", "estimatedROI", "suggestedQuantity"],
            "properties": {
                "title": {"type": "string", "maxLength": 50},
                "prize": {"type": "string", "maxLength": 100},
                "participationMethod": {"type": "string", "maxLength": 200},
                "estimatedCost": {"type": "integer", "minimum": 0},
                "estimatedParticipants": {"type": "integer", "minimum": 0},
                "estimatedROI": {"type": "number"},
                "suggestedQuantity": {"type": "integer", "minimum": 1, "maximum": crate::model::MAX_QUANTITY}
            }
        });
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["recommendations"],
            "properties": {
                "recommendations": {"type": "array", "minItems": 3, "maxItems": 3, "items": item}
            }
        })
    }

    fn request(&self, brief: &Brief) -> serde_json::Value {
        let store = &brief.store;
        let user = format!(
            "매장명: {}\n업종: {}\n지역: {}\n주소: {}\n이벤트 목적: {}\n\
             이 매장을 위한 경품 이벤트를 정확히 3개 추천하세요. 각 추천은 제목(50자 이내), 경품(100자 이내), \
             참여 방법(200자 이내), 예상 비용(원), 예상 참여자 수, 예상 ROI(%), 경품 수량을 포함합니다.",
            store.store_name,
            store.industry,
            store.region,
            store.address.as_deref().unwrap_or("-"),
            objective_label(brief.objective),
        );
        json!({
            "model": self.cfg.model,
            "temperature": 0.4,
            "messages": [
                {"role": "system", "content": "당신은 소상공인 마케팅 이벤트 기획자입니다. 요청된 JSON 형식으로만 답합니다."},
                {"role": "user", "content": user}
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "event_recommendations", "strict": true, "schema": Self::answer_schema()}
            }
        })
    }

    async fn attempt(&self, body: &serde_json::Value) -> Result<String, (bool, String)> {
        let url = format!("{}/chat/completions", self.cfg.url.trim_end_matches('/'));
        let mut req = self.http.post(&url).json(body);
        if let Some(key) = &self.cfg.api_key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.map_err(|e| {
            let what = if e.is_timeout() {
                "시간 초과"
            } else {
                "연결 실패"
            };
            (true, format!("추천 서비스 {what}: {e}"))
        })?;
        let status = resp.status();
        if !status.is_success() {
            let retry = status.as_u16() == 429 || status.is_server_error();
            return Err((retry, format!("추천 서비스가 {status}로 답했습니다.")));
        }
        let answer: ChatAnswer = resp
            .json()
            .await
            .map_err(|e| (false, format!("추천 서비스의 응답을 읽을 수 없습니다: {e}")))?;
        let choice = answer
            .choices
            .into_iter()
            .next()
            .ok_or((false, "추천 서비스의 응답에 choices가 없습니다.".to_owned()))?;
        if let Some(refusal) = choice.message.refusal {
            return Err((false, format!("추천 서비스가 답하지 않았습니다: {refusal}")));
        }
        choice
            .message
            .content
            .ok_or((false, "추천 서비스의 응답에 내용이 없습니다.".to_owned()))
    }

    /// Parses and checks an answer's content.
    pub fn parse(content: &str) -> Result<Vec<Recommendation>, RecommendError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Answer {
            recommendations: Vec<Recommendation>,
        }
        let answer: Answer = serde_json::from_str(content)
            .map_err(|e| RecommendError::BadAnswer(format!("추천 결과가 형식에 맞지 않습니다: {e}")))?;
        if answer.recommendations.len() != 3 {
            return Err(RecommendError::BadAnswer(format!(
                "추천 결과는 3개여야 하는데 {}개입니다.",
                answer.recommendations.len()
            )));
        }
        let mut c = Complaints::default();
        for (i, r) in answer.recommendations.iter().enumerate() {
            r.check(&format!("recommendations[{i}]"), &mut c);
        }
        if let Err(issuance_core::Error::Fields(fields)) = c.finish() {
            let list: Vec<String> = fields
                .iter()
                .map(|f| format!("{} {}", f.field, f.message))
                .collect();
            return Err(RecommendError::BadAnswer(format!(
                "추천 결과가 규칙에 맞지 않습니다: {}",
                list.join(", ")
            )));
        }
        Ok(answer
            .recommendations
            .into_iter()
            .map(|r| Recommendation {
                title: r.title.trim().to_owned(),
                prize: r.prize.trim().to_owned(),
                participation_method: r.participation_method.trim().to_owned(),
                ..r
            })
            .collect())
    }
}

#[derive(Deserialize)]
struct ChatAnswer {
    choices: Vec<ChatChoice>,
}

#[derive(Deserialize)]
struct ChatChoice {
    message: ChatMessage,
}

#[derive(Deserialize)]
struct ChatMessage {
    content: Option<String>,
    refusal: Option<String>,
}

impl Recommender for ChatCompletions {
    fn name(&self) -> &'static str {
        "chat-completions"
    }

    fn recommend<'a>(
        &'a self,
        brief: &'a Brief,
    ) -> BoxFuture<'a, Result<Vec<Recommendation>, RecommendError>> {
        Box::pin(async move {
            let body = self.request(brief);
            let mut last = String::new();
            for attempt in 0..=self.cfg.retries {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt - 1))).await;
                }
                match self.attempt(&body).await {
                    Ok(content) => return Self::parse(&content),
                    Err((true, why)) => last = why,
                    Err((false, why)) => return Err(RecommendError::BadAnswer(why)),
                }
            }
            Err(RecommendError::Unavailable(format!(
                "{last} ({}회 시도)",
                self.cfg.retries + 1
            )))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brief(objective: CampaignObjective, industry: &str) -> Brief {
        Brief {
            objective,
            store: StoreInfo {
                store_name: "우리동네 카페".into(),
                industry: industry.into(),
                region: "서울 강남구".into(),
                address: None,
            },
        }
    }

    #[test]
    fn builtin_follows_its_documented_model() {
        let r = Builtin::recommendations(&brief(CampaignObjective::NewCustomer, "카페"));
        assert_eq!(r.len(), 3);
        // Tier 0: P = 400 × 1.2 × 1.0 = 480; Q = 144; C = 144 × 1,500 + 50,000 = 266,000;
        // R = 480 × 0.25 × 7,000 = 840,000; ROI = 215.8 %.
        assert_eq!(r[0].estimated_participants, 480);
        assert_eq!(r[0].suggested_quantity, 144);
        assert_eq!(r[0].estimated_cost, 266_000);
        assert_eq!(r[0].estimated_roi, 215.8);
        assert_eq!(r[0].prize, "아메리카노 무료 쿠폰");
        assert!(r[0].title.starts_with("우리동네 카페"));
        // Tier 2: one grand prize at least.
        assert!(r[2].suggested_quantity >= 1);
        let mut c = Complaints::default();
        for (i, rec) in r.iter().enumerate() {
            rec.check(&format!("r[{i}]"), &mut c);
        }
        assert!(c.finish().is_ok());
    }

    #[test]
    fn builtin_is_deterministic_and_differs_by_objective_and_trade() {
        let a = Builtin::recommendations(&brief(CampaignObjective::Revisit, "헤어샵"));
        assert_eq!(
            a,
            Builtin::recommendations(&brief(CampaignObjective::Revisit, "헤어샵"))
        );
        assert_ne!(
            a,
            Builtin::recommendations(&brief(CampaignObjective::Revisit, "분식집"))
        );
        assert_ne!(
            a,
            Builtin::recommendations(&brief(CampaignObjective::BrandAwareness, "헤어샵"))
        );
        assert_eq!(Trade::of("수제 베이커리"), Trade::Cafe);
        assert_eq!(Trade::of("네일아트"), Trade::Beauty);
        assert_eq!(Trade::of("철물점"), Trade::General);
    }

    #[test]
    fn the_key_never_reaches_a_log() {
        let cfg = ChatConfig {
            url: "https://user:pass@llm.example/v1".into(),
            model: "m".into(),
            api_key: Some("sk-very-secret".into()),
            timeout: Duration::from_secs(1),
            retries: 0,
        };
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("sk-very-secret") && !shown.contains("pass"),
            "{shown}"
        );
        assert!(shown.contains("llm.example"));
    }

    #[test]
    fn chat_answers_are_checked() {
        let good = serde_json::to_string(&json!({"recommendations": Builtin::recommendations(
            &brief(CampaignObjective::SalesIncrease, "치킨"))}))
        .unwrap();
        assert_eq!(ChatCompletions::parse(&good).unwrap().len(), 3);
        assert!(matches!(
            ChatCompletions::parse("not json"),
            Err(RecommendError::BadAnswer(_))
        ));
        let two = json!({"recommendations": &Builtin::recommendations(
            &brief(CampaignObjective::SalesIncrease, "치킨"))[..2]});
        assert!(
            matches!(ChatCompletions::parse(&two.to_string()), Err(RecommendError::BadAnswer(m)) if m.contains("3개"))
        );
        let mut long = Builtin::recommendations(&brief(CampaignObjective::SalesIncrease, "치킨"));
        long[1].title = "가".repeat(51);
        let long = json!({"recommendations": long});
        assert!(
            matches!(ChatCompletions::parse(&long.to_string()), Err(RecommendError::BadAnswer(m)) if m.contains("recommendations[1].title"))
        );
    }
}
