//! Who a verified token says is calling, and the roles a token may carry.

/// The admin role.
pub const ROLE_ADMIN: &str = "ROLE_ADMIN";
/// The user role.
pub const ROLE_USER: &str = "ROLE_USER";

/// Who is calling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The token's user id.
    pub user_id: i64,
    /// Whether the token carries `ROLE_ADMIN`.
    pub admin: bool,
}

impl Caller {
    /// A user may act for themself; an admin for anyone.
    pub fn may_act_for(&self, user_id: i64) -> bool {
        self.admin || self.user_id == user_id
    }
}
