//! The campaign's words as the seed writes them, with their field rules. Every check returns
//! all complaints at once, each naming its field, so a form can show them beside the inputs.

use chrono::NaiveDate;
use issuance_core::{
    enums::{CampaignObjective, PrizeKind},
    error::FieldError,
};
use serde::{Deserialize, Serialize};

/// Who is asking: a campaign belongs to the user who created it; an admin sees every one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Viewer {
    /// The token's user.
    pub user_id: i64,
    /// Whether the token is an admin's.
    pub admin: bool,
}

impl Viewer {
    /// Whether this viewer may see and change a campaign of `owner`.
    pub fn may_touch(&self, owner: i64) -> bool {
        self.admin || self.user_id == owner
    }

    /// The owner a list is limited to: the viewer's own, or none for an admin.
    pub fn owner_filter(&self) -> Option<i64> {
        (!self.admin).then_some(self.user_id)
    }
}

/// The store a campaign is for (the seed's StoreInfo).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreInfo {
    /// 매장명, 1–50 characters.
    pub store_name: String,
    /// 업종 (free text: 카페, 한식당, 미용실 …), 1–30 characters.
    pub industry: String,
    /// 지역, 1–50 characters.
    pub region: String,
    /// 주소, up to 200 characters.
    pub address: Option<String>,
}

/// One of the three recommendations of a recommendation job (the seed's EventRecommendation,
/// plus the number of prizes the recommender suggests).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    /// 이벤트 제목, 1–50 characters.
    pub title: String,
    /// 경품, 1–100 characters.
    pub prize: String,
    /// 참여 방법, 1–200 characters.
    pub participation_method: String,
    /// 예상 비용 (KRW), ≥ 0.
    pub estimated_cost: i64,
    /// 예상 참여자 수, ≥ 0.
    pub estimated_participants: i64,
    /// 예상 ROI (%).
    #[serde(rename = "estimatedROI")]
    pub estimated_roi: f64,
    /// How many prizes to hand out (1–1,000,000).
    pub suggested_quantity: i64,
}

/// The edited texts and colours of the chosen banner (the seed's EditedContent).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EditedContent {
    /// 편집된 제목, up to 100 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 100))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// 편집된 경품 정보, up to 200 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prize_text: Option<String>,
    /// 편집된 참여 안내, up to 300 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 300))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participation_text: Option<String>,
    /// 배경색 (`#RGB` or `#RRGGBB`).
    #[cfg_attr(feature = "openapi", schema(pattern = "^#([A-Fa-f0-9]{6}|[A-Fa-f0-9]{3})$"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_color: Option<String>,
    /// 텍스트 색상.
    #[cfg_attr(feature = "openapi", schema(pattern = "^#([A-Fa-f0-9]{6}|[A-Fa-f0-9]{3})$"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_color: Option<String>,
    /// 강조 색상.
    #[cfg_attr(feature = "openapi", schema(pattern = "^#([A-Fa-f0-9]{6}|[A-Fa-f0-9]{3})$"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accent_color: Option<String>,
}

/// The owner's choice among the recommendations, with the prize's terms.
#[derive(Clone, Debug)]
pub struct ChoiceInput {
    /// The recommendation job the choice is from.
    pub job_id: uuid::Uuid,
    /// 0, 1 or 2.
    pub index: i64,
    /// An edited title (else the recommendation's).
    pub title: Option<String>,
    /// An edited prize (else the recommendation's).
    pub prize: Option<String>,
    /// Golden ticket (default) or coupon.
    pub prize_kind: Option<PrizeKind>,
    /// How many prizes (else the recommendation's suggestion).
    pub quantity: Option<i64>,
    /// First day (KST).
    pub start_date: NaiveDate,
    /// Last day (KST).
    pub end_date: NaiveDate,
}

/// Most prizes one campaign may hand out.
pub const MAX_QUANTITY: i64 = 1_000_000;

/// Collects complaints.
#[derive(Default)]
pub struct Complaints(Vec<FieldError>);

impl Complaints {
    /// A complaint about `field`.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// Text of 1..=`max` characters (after trimming), not only blanks, no control characters.
    pub fn text(&mut self, field: &str, value: &str, max: usize) {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            self.add(field, "값을 입력해야 합니다.");
        } else if trimmed.chars().count() > max {
            self.add(field, format!("{max}자 이하여야 합니다."));
        } else if trimmed.chars().any(char::is_control) {
            self.add(field, "제어 문자를 쓸 수 없습니다.");
        }
    }

    /// Optional text of at most `max` characters.
    pub fn optional_text(&mut self, field: &str, value: Option<&str>, max: usize) {
        if let Some(v) = value {
            if v.chars().count() > max {
                self.add(field, format!("{max}자 이하여야 합니다."));
            } else if v.chars().any(|c| c.is_control() && c != '\n') {
                self.add(field, "제어 문자를 쓸 수 없습니다.");
            }
        }
    }

    /// `Ok` when nothing was said, else the complaints as one error.
    pub fn finish(self) -> Result<(), issuance_core::Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(issuance_core::Error::Fields(self.0))
        }
    }
}

/// Whether `s` is `#RGB` or `#RRGGBB` (the seed's pattern).
pub fn is_hex_color(s: &str) -> bool {
    let Some(hex) = s.strip_prefix('#') else {
        return false;
    };
    matches!(hex.len(), 3 | 6) && hex.chars().all(|c| c.is_ascii_hexdigit())
}

impl StoreInfo {
    /// The seed's limits.
    pub fn check(&self, c: &mut Complaints) {
        c.text("storeInfo.storeName", &self.store_name, 50);
        c.text("storeInfo.industry", &self.industry, 30);
        c.text("storeInfo.region", &self.region, 50);
        c.optional_text("storeInfo.address", self.address.as_deref(), 200);
    }

    /// Trimmed copies of the texts.
    pub fn trimmed(&self) -> Self {
        Self {
            store_name: self.store_name.trim().to_owned(),
            industry: self.industry.trim().to_owned(),
            region: self.region.trim().to_owned(),
            address: self
                .address
                .as_deref()
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned),
        }
    }
}

impl Recommendation {
    /// The seed's limits on a recommendation (an external recommender's answer is checked too).
    pub fn check(&self, at: &str, c: &mut Complaints) {
        c.text(&format!("{at}.title"), &self.title, 50);
        c.text(&format!("{at}.prize"), &self.prize, 100);
        c.text(
            &format!("{at}.participationMethod"),
            &self.participation_method,
            200,
        );
        if self.estimated_cost < 0 {
            c.add(format!("{at}.estimatedCost"), "0 이상이어야 합니다.");
        }
        if self.estimated_participants < 0 {
            c.add(format!("{at}.estimatedParticipants"), "0 이상이어야 합니다.");
        }
        if !self.estimated_roi.is_finite() {
            c.add(format!("{at}.estimatedROI"), "숫자여야 합니다.");
        }
        if !(1..=MAX_QUANTITY).contains(&self.suggested_quantity) {
            c.add(
                format!("{at}.suggestedQuantity"),
                format!("1 이상 {MAX_QUANTITY} 이하여야 합니다."),
            );
        }
    }
}

impl EditedContent {
    /// The seed's limits and colour pattern.
    pub fn check(&self, c: &mut Complaints) {
        c.optional_text("editedContent.title", self.title.as_deref(), 100);
        c.optional_text("editedContent.prizeText", self.prize_text.as_deref(), 200);
        c.optional_text(
            "editedContent.participationText",
            self.participation_text.as_deref(),
            300,
        );
        for (field, value) in [
            ("editedContent.backgroundColor", &self.background_color),
            ("editedContent.textColor", &self.text_color),
            ("editedContent.accentColor", &self.accent_color),
        ] {
            if let Some(v) = value
                && !is_hex_color(v)
            {
                c.add(field, "#RGB 또는 #RRGGBB 형식의 색상이어야 합니다.");
            }
        }
    }
}

/// The objective in Korean, for prompts and banners.
pub fn objective_label(o: CampaignObjective) -> &'static str {
    match o {
        CampaignObjective::NewCustomer => "신규 고객 유치",
        CampaignObjective::Revisit => "재방문 유도",
        CampaignObjective::SalesIncrease => "매출 증대",
        CampaignObjective::BrandAwareness => "인지도 향상",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_colors_follow_the_seed_pattern() {
        for ok in ["#fff", "#FFFFFF", "#a1B2c3", "#000"] {
            assert!(is_hex_color(ok), "{ok}");
        }
        for bad in ["fff", "#ffff", "#ggg", "#12345", "#1234567", "", "#", "red"] {
            assert!(!is_hex_color(bad), "{bad}");
        }
    }

    #[test]
    fn store_info_names_each_bad_field() {
        let info = StoreInfo {
            store_name: " ".into(),
            industry: "가".repeat(31),
            region: "서울".into(),
            address: Some("a\u{0}b".into()),
        };
        let mut c = Complaints::default();
        info.check(&mut c);
        let Err(issuance_core::Error::Fields(fields)) = c.finish() else {
            panic!("expected field errors");
        };
        let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            ["storeInfo.storeName", "storeInfo.industry", "storeInfo.address"]
        );
    }
}
