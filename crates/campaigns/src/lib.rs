//! Marketing campaigns of small businesses (the event-marketing seed), with their prize on the
//! issuance engine.
//!
//! An owner creates a draft (objective + store), asks for three recommendations and for banners
//! in three styles (both [`jobs`] on the workers), chooses a recommendation with the prize's
//! terms, saves the edited content of one banner (re-rendered by [`banner`]) and publishes:
//! [`lifecycle::Campaigns::publish`] creates the prize — a golden-ticket event or a first-come
//! coupon batch — in the transaction that approves the campaign, then hands the campaign to
//! each selected channel ([`channels`]). Participants are the prize's holders, counted live
//! from Redis ([`reads`]).
//!
//! | module | what |
//! |---|---|
//! | [`model`] | the seed's words and their field rules |
//! | [`recommend`] | the `Recommender` trait, the built-in model and the chat-completions client |
//! | [`banner`] | SVG per style → PNG |
//! | [`channels`] | webhooks per channel with a timeout and a circuit breaker |
//! | [`jobs`] | queueing, running, resuming and caching the two jobs |
//! | [`lifecycle`] | create, ask, choose, edit, publish — with ownership |
//! | [`reads`] | detail, list, dashboard with live participant counts |

pub mod banner;
pub mod channels;
pub mod jobs;
pub mod lifecycle;
pub mod model;
pub mod reads;
pub mod recommend;

pub use lifecycle::Campaigns;
