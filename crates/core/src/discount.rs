//! A coupon inventory's discount policy: what a coupon takes off an order.

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// How a discount is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "discount_type", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DiscountType {
    /// `value` percent of the order, capped by `maxDiscount` when set.
    Percent,
    /// `value` won off.
    Amount,
}

/// The discount policy a coupon of the inventory gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Discount {
    /// PERCENT or AMOUNT.
    #[serde(rename = "type")]
    pub kind: DiscountType,
    /// Percent (1–100) or won (≥ 1).
    pub value: i64,
    /// Cap of a PERCENT discount, in won; not allowed with AMOUNT.
    #[serde(default)]
    pub max_discount: Option<i64>,
}

impl Discount {
    /// Checks the value ranges of its kind.
    pub fn check(&self) -> Result<(), Error> {
        let ok = match self.kind {
            DiscountType::Percent => {
                (1..=100).contains(&self.value) && self.max_discount.is_none_or(|m| m >= 1)
            }
            DiscountType::Amount => self.value >= 1 && self.max_discount.is_none(),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Invalid(
                "discount: PERCENT takes value 1-100 and an optional maxDiscount >= 1; AMOUNT takes value >= 1 and no maxDiscount".into(),
            ))
        }
    }

    /// The policy stored in the inventory's three columns, if it has one (a CHECK keeps the
    /// columns all set or all empty).
    pub fn from_columns(
        kind: Option<DiscountType>,
        value: Option<i64>,
        max_discount: Option<i64>,
    ) -> Option<Self> {
        Some(Self {
            kind: kind?,
            value: value?,
            max_discount,
        })
    }

    /// What this policy takes off `amount` won.
    pub fn apply(&self, amount: i64) -> i64 {
        let off = match self.kind {
            DiscountType::Percent => {
                let pct = amount * self.value / 100;
                self.max_discount.map_or(pct, |cap| pct.min(cap))
            }
            DiscountType::Amount => self.value,
        };
        off.clamp(0, amount.max(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discounts() {
        let pct = Discount {
            kind: DiscountType::Percent,
            value: 10,
            max_discount: Some(3_000),
        };
        assert_eq!(pct.apply(20_000), 2_000);
        assert_eq!(pct.apply(50_000), 3_000);
        let amount = Discount {
            kind: DiscountType::Amount,
            value: 5_000,
            max_discount: None,
        };
        assert_eq!(amount.apply(3_000), 3_000);
        assert!(
            Discount {
                kind: DiscountType::Amount,
                value: 5,
                max_discount: Some(1)
            }
            .check()
            .is_err()
        );
        assert!(
            Discount {
                kind: DiscountType::Percent,
                value: 101,
                max_discount: None
            }
            .check()
            .is_err()
        );
    }
}
