//! Group commit of issue requests: requests to one scope (an event or a coupon batch) that
//! arrive while a call is in flight are decided together in the next `issue.lua` call.
//!
//! Each scope gets one committer task per process. A request goes out at once when a call slot is
//! free, so an idle system adds no latency; under a burst, requests queue while the slots are
//! busy and the next call takes up to [`MAX_GROUP`] of them. The script decides them one after
//! another, each exactly as if alone, so the guarantees do not change; what is shared is the
//! round trip, the socket flush (fred flushes after every EVALSHA) and the script set-up, which
//! dominated the cost of one issue.
//!
//! If the call fails (Redis down), every request in it gets the error; none was decided twice,
//! because a failed call decided nothing or everything (a script is atomic).
//!
//! A committer with no request for [`IDLE`] leaves the registry (so a process does not keep a task
//! per scope ever asked about); it still serves whoever holds its queue (requests on their way,
//! and the scope's cached copies, see [`QueueCell`]), and ends when they are gone. The next
//! request for the scope without a copy holding a queue starts a new one.

use std::sync::{Arc, OnceLock, RwLock};

use fred::clients::Pool;
use issuance_core::error::Error;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::{
    confirm::Confirm,
    issue::{self, IssueGroup, IssueRequest, Verdict},
    keys::ScopeKeys,
    scope::{IdMode, Scope},
};

/// Most requests decided in one call.
pub const MAX_GROUP: usize = 256;
/// A scope's committer with no request this long leaves the registry.
pub const IDLE: std::time::Duration = std::time::Duration::from_secs(60);

/// The queues by stream key, hashed with foldhash as the rules cache's map is (its keys are
/// those of scopes that exist).
type Queues =
    RwLock<std::collections::HashMap<String, mpsc::UnboundedSender<Job>, foldhash::fast::RandomState>>;

/// Takes `name` out of the registry if its entry is still `queue` (a newer committer may have
/// replaced it).
fn forget(queues: &Queues, name: &str, queue: &mpsc::UnboundedSender<Job>) {
    let mut queues = queues.write().unwrap_or_else(|e| e.into_inner());
    if queues.get(name).is_some_and(|q| q.same_channel(queue)) {
        queues.remove(name);
    }
}

struct Job {
    request: IssueRequest,
    reply: oneshot::Sender<Result<Verdict, Error>>,
}

/// A scope copy's queue, found in the registry on the copy's first issue and kept with the copy
/// (see [`crate::cache::Cached`]): later issues skip the registry's lock and the hash of the
/// stream key (about 200 instructions an issue). While a copy keeps it, its committer serves on
/// after leaving the registry when idle; it ends once the copies holding it are dropped. A copy
/// loaded after that finds a new committer, so for a moment a scope can have two, which changes
/// nothing of what is decided: each call decides its requests as if alone.
#[derive(Default)]
pub struct QueueCell(OnceLock<mpsc::UnboundedSender<Job>>);

impl std::fmt::Debug for QueueCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueCell")
            .field("found", &self.0.get().is_some())
            .finish()
    }
}

impl Clone for QueueCell {
    fn clone(&self) -> Self {
        QueueCell(self.0.get().cloned().map(OnceLock::from).unwrap_or_default())
    }
}

/// The group-commit queues of one process, one committer task per scope.
pub struct GroupCommit {
    in_flight: usize,
    confirm: Option<Confirm>,
    queues: Arc<Queues>,
}

impl GroupCommit {
    /// Queues allowing `in_flight` calls per scope at once (at least one), each confirmed by
    /// `confirm` when set (replica mode).
    pub fn new(in_flight: usize, confirm: Option<Confirm>) -> Self {
        Self {
            in_flight: in_flight.max(1),
            confirm,
            queues: Arc::default(),
        }
    }

    /// Decides `request` for `scope`, whose keys are `keys` and whose copy keeps `cell`.
    pub async fn issue(
        &self,
        redis: &Pool,
        keys: &ScopeKeys,
        scope: &Scope,
        cell: &QueueCell,
        request: IssueRequest,
    ) -> Result<Verdict, Error> {
        let (reply, answer) = oneshot::channel();
        let job = Job { request, reply };
        let queue = cell.0.get_or_init(|| self.queue(redis, keys, scope));
        if let Err(mpsc::error::SendError(job)) = queue.send(job) {
            // Its committer ended all the same (its runtime stopped): start a new one, without
            // keeping it.
            forget(&self.queues, &keys.stream, queue);
            if self.queue(redis, keys, scope).send(job).is_err() {
                return Err(Error::protocol("group commit", "stopped"));
            }
        }
        answer
            .await
            .map_err(|_| Error::protocol("group commit", "dropped a request"))?
    }

    fn queue(&self, redis: &Pool, keys: &ScopeKeys, scope: &Scope) -> mpsc::UnboundedSender<Job> {
        if let Some(q) = self
            .queues
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&keys.stream)
        {
            return q.clone();
        }
        let mut queues = self.queues.write().unwrap_or_else(|e| e.into_inner());
        queues
            .entry(keys.stream.clone())
            .or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(run(
                    Arc::downgrade(&self.queues),
                    tx.clone(),
                    redis.clone(),
                    keys.clone(),
                    Tag {
                        kind: scope.kind().as_str(),
                        scope: scope.id().into(),
                        ids: scope.id_mode(),
                        confirm: self.confirm,
                    },
                    self.in_flight,
                    rx,
                ));
                tx
            })
            .clone()
    }
}

/// What the records of a scope carry.
struct Tag {
    kind: &'static str,
    scope: Arc<str>,
    ids: IdMode,
    confirm: Option<Confirm>,
}

/// The committer of one scope; leaves the registry when idle, ends when its queue's senders are
/// gone.
async fn run(
    registry: std::sync::Weak<Queues>,
    me: mpsc::UnboundedSender<Job>,
    redis: Pool,
    keys: ScopeKeys,
    tag: Tag,
    in_flight: usize,
    mut queue: mpsc::UnboundedReceiver<Job>,
) {
    let slots = Arc::new(Semaphore::new(in_flight));
    let keys = Arc::new(keys);
    let mut me = Some(me);
    loop {
        let first = match &me {
            Some(sender) => match tokio::time::timeout(IDLE, queue.recv()).await {
                Ok(Some(job)) => job,
                Ok(None) => return,
                Err(_) => {
                    if let Some(registry) = registry.upgrade() {
                        forget(&registry, &keys.stream, sender);
                    }
                    // Without our own sender, the queue closes once the requests holding it
                    // are gone.
                    me = None;
                    continue;
                }
            },
            None => match queue.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let (redis, keys, scope) = (redis.clone(), Arc::clone(&keys), Arc::clone(&tag.scope));
        let (kind, ids, confirm) = (tag.kind, tag.ids, tag.confirm);
        tokio::spawn(async move {
            let _slot = slot;
            let (requests, replies): (Vec<_>, Vec<_>) =
                jobs.into_iter().map(|j| (j.request, j.reply)).unzip();
            metrics::histogram!("issuer_issue_batch_size").record(requests.len() as f64);
            let group = IssueGroup {
                keys: &keys,
                kind,
                scope: &scope,
                ids,
                requests: &requests,
                confirm,
            };
            match issue::run(redis.next(), group).await {
                Ok(verdicts) => {
                    for (reply, verdict) in replies.into_iter().zip(verdicts) {
                        let _ = reply.send(Ok(verdict));
                    }
                }
                Err(e) => {
                    for reply in replies {
                        let _ = reply.send(Err(e.duplicate()));
                    }
                }
            }
        });
    }
}
