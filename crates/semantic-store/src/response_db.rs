//! Stored responses (OpenAI's Responses API) in one redb database file,
//! `responses.redb` in the cache directory, shared by every model.
//!
//! Why redb: a pure-Rust embedded B-tree with ACID transactions whose
//! commits are durable when they return (`Durability::Immediate`: fsync),
//! copy-on-write pages and a checksummed commit slot, so a SIGKILL or a
//! power cut leaves either the last commit or the one before it, never a
//! torn record. It needs no C library (SQLite would be a second C build
//! beside llama.cpp's). Measured: see ARCHITECTURE.md ("Stored responses").
//!
//! Tables: `responses` (id → record as JSON) and `by_age` ((created_at, id)
//! → size), the order in which expiry and the byte budget remove records,
//! plus `totals` (the byte and record counts, kept in the same transactions
//! so they never drift from the records).
//!
//! Multi-agent sessions (`/v1/sessions`) live in the same file, table
//! `sessions` (id → tenant and session as JSON): the whole session is
//! rewritten on each change, one fsynced commit per turn. They are not
//! under the responses' byte budget or expiry; a session stays until it is
//! deleted (its `max_turns` bounds its size).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use semantic_domain::responses::{
    ResponseBudget, ResponseStore, ResponseStoreError, ResponseStoreStats, StoredResponse,
};
use semantic_domain::sessions::{Session, SessionStore, SessionStoreError, StoredSession};
use semantic_domain::{AgentId, TenantId};
use serde::{Deserialize, Serialize};

const RESPONSES: TableDefinition<&str, &[u8]> = TableDefinition::new("responses");
const BY_AGE: TableDefinition<(u64, &str), u64> = TableDefinition::new("by_age");
const TOTALS: TableDefinition<&str, u64> = TableDefinition::new("totals");
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
const BYTES: &str = "bytes";
const COUNT: &str = "count";

/// The database file's name in the cache directory.
pub const FILE_NAME: &str = "responses.redb";

pub const STORED: &str = "semantic_responses_stored";
pub const STORED_BYTES: &str = "semantic_responses_stored_bytes";
pub const EVICTED: &str = "semantic_responses_evicted_total";

/// The record as it is kept: the domain type with plain strings.
#[derive(Serialize, Deserialize)]
struct Record {
    id: String,
    tenant: String,
    previous: Option<String>,
    agent: Option<String>,
    created_at: u64,
    response: String,
    input_items: String,
    #[serde(default)]
    reply_text: String,
}

/// Responses in a redb database, within a [`ResponseBudget`].
pub struct ResponseDb {
    db: Database,
    budget: ResponseBudget,
}

fn fail(what: &str) -> impl Fn(redb::Error) -> ResponseStoreError + '_ {
    move |e| ResponseStoreError(format!("{what}: {e}"))
}

macro_rules! db_try {
    ($what:expr, $e:expr) => {
        $e.map_err(|e| fail($what)(e.into()))?
    };
}

impl ResponseDb {
    /// Open (or create) `dir/responses.redb`.
    pub fn open(dir: &Path, budget: ResponseBudget) -> Result<Self, ResponseStoreError> {
        let path = dir.join(FILE_NAME);
        let db = Database::create(&path)
            .map_err(|e| ResponseStoreError(format!("cannot open {}: {e}", path.display())))?;
        Self::with_db(db, budget)
    }

    /// A store that lives in memory only (tests, servers without a cache
    /// directory): the same rules, nothing survives the process.
    pub fn in_memory(budget: ResponseBudget) -> Result<Self, ResponseStoreError> {
        let db = db_try!(
            "cannot create an in-memory database",
            Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())
        );
        Self::with_db(db, budget)
    }

    fn with_db(db: Database, budget: ResponseBudget) -> Result<Self, ResponseStoreError> {
        let store = Self { db, budget };
        // Create the tables, so readers of a fresh file find them.
        let txn = db_try!("begin", store.db.begin_write());
        db_try!("open", txn.open_table(RESPONSES));
        db_try!("open", txn.open_table(BY_AGE));
        db_try!("open", txn.open_table(TOTALS));
        db_try!("open", txn.open_table(SESSIONS));
        db_try!("commit", txn.commit());
        register();
        store.publish();
        Ok(store)
    }

    /// Remove expired records, then the oldest while `incoming` more bytes
    /// would pass the budget; returns how many went.
    fn make_room(
        &self,
        txn: &WriteTransaction,
        now: u64,
        incoming: u64,
    ) -> Result<u64, ResponseStoreError> {
        let mut age = db_try!("open", txn.open_table(BY_AGE));
        let mut records = db_try!("open", txn.open_table(RESPONSES));
        let mut totals = db_try!("open", txn.open_table(TOTALS));
        let mut bytes = read_total(&totals, BYTES)?;
        let mut count = read_total(&totals, COUNT)?;
        let expired_before = now.saturating_sub(self.budget.ttl_secs);
        let mut removed = 0;
        loop {
            let oldest = db_try!("read", age.first()).map(|(k, v)| {
                let (created, id) = k.value();
                (created, id.to_owned(), v.value())
            });
            let Some((created, id, size)) = oldest else {
                break;
            };
            let expired = created < expired_before;
            let over = bytes + incoming > self.budget.max_bytes;
            if !expired && !over {
                break;
            }
            db_try!("delete", age.remove((created, id.as_str())));
            db_try!("delete", records.remove(id.as_str()));
            bytes = bytes.saturating_sub(size);
            count = count.saturating_sub(1);
            removed += 1;
        }
        db_try!("write", totals.insert(BYTES, bytes));
        db_try!("write", totals.insert(COUNT, count));
        Ok(removed)
    }

    fn read_record(&self, id: &str) -> Result<Option<Record>, ResponseStoreError> {
        let txn = db_try!("begin", self.db.begin_read());
        let table = db_try!("open", txn.open_table(RESPONSES));
        let Some(bytes) = db_try!("read", table.get(id)) else {
            return Ok(None);
        };
        serde_json::from_slice(bytes.value())
            .map(Some)
            .map_err(|e| ResponseStoreError(format!("record {id} is unreadable: {e}")))
    }

    /// The gauges follow the totals.
    fn publish(&self) {
        let stats = self.stats();
        metrics::gauge!(STORED).set(stats.responses as f64);
        metrics::gauge!(STORED_BYTES).set(stats.bytes as f64);
    }
}

fn read_total(
    totals: &impl ReadableTable<&'static str, u64>,
    key: &str,
) -> Result<u64, ResponseStoreError> {
    Ok(db_try!("read", totals.get(key)).map_or(0, |v| v.value()))
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The series exist from start-up at 0.
pub fn register() {
    metrics::counter!(EVICTED).increment(0);
    let _ = metrics::gauge!(STORED);
    let _ = metrics::gauge!(STORED_BYTES);
}

impl ResponseStore for ResponseDb {
    fn put(&self, response: &StoredResponse) -> Result<(), ResponseStoreError> {
        let size = response.size_bytes();
        if size > self.budget.max_bytes {
            return Err(ResponseStoreError(format!(
                "a response of {size} bytes does not fit the store's budget of {} bytes",
                self.budget.max_bytes
            )));
        }
        let record = Record {
            id: response.id.clone(),
            tenant: response.tenant.as_str().to_owned(),
            previous: response.previous.clone(),
            agent: response.agent.as_ref().map(|a| a.as_str().to_owned()),
            created_at: response.created_at,
            response: response.response.clone(),
            input_items: response.input_items.clone(),
            reply_text: response.reply_text.clone(),
        };
        let bytes = serde_json::to_vec(&record)
            .map_err(|e| ResponseStoreError(format!("cannot encode {}: {e}", response.id)))?;
        let txn = db_try!("begin", self.db.begin_write());
        let evicted = self.make_room(&txn, now_unix(), size)?;
        {
            let mut records = db_try!("open", txn.open_table(RESPONSES));
            let mut age = db_try!("open", txn.open_table(BY_AGE));
            let mut totals = db_try!("open", txn.open_table(TOTALS));
            if db_try!("read", records.get(response.id.as_str())).is_some() {
                return Err(ResponseStoreError(format!(
                    "response {} is stored already",
                    response.id
                )));
            }
            db_try!(
                "write",
                records.insert(response.id.as_str(), bytes.as_slice())
            );
            db_try!(
                "write",
                age.insert((response.created_at, response.id.as_str()), size)
            );
            let total = read_total(&totals, BYTES)? + size;
            let count = read_total(&totals, COUNT)? + 1;
            db_try!("write", totals.insert(BYTES, total));
            db_try!("write", totals.insert(COUNT, count));
        }
        db_try!("commit", txn.commit());
        metrics::counter!(EVICTED).increment(evicted);
        self.publish();
        Ok(())
    }

    fn get(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<StoredResponse>, ResponseStoreError> {
        let Some(record) = self.read_record(id)? else {
            return Ok(None);
        };
        let expired = record.created_at < now_unix().saturating_sub(self.budget.ttl_secs);
        if record.tenant != tenant.as_str() || expired {
            return Ok(None);
        }
        let agent = match record.agent.as_deref().map(AgentId::parse) {
            Some(Ok(agent)) => Some(agent),
            Some(Err(e)) => return Err(ResponseStoreError(format!("record {id}: {e}"))),
            None => None,
        };
        Ok(Some(StoredResponse {
            id: record.id,
            tenant: tenant.clone(),
            previous: record.previous,
            agent,
            created_at: record.created_at,
            response: record.response,
            input_items: record.input_items,
            reply_text: record.reply_text,
        }))
    }

    fn delete(&self, tenant: &TenantId, id: &str) -> Result<bool, ResponseStoreError> {
        let txn = db_try!("begin", self.db.begin_write());
        {
            let mut records = db_try!("open", txn.open_table(RESPONSES));
            let record: Option<Record> = match db_try!("read", records.get(id)) {
                Some(bytes) => serde_json::from_slice(bytes.value()).ok(),
                None => None,
            };
            let Some(record) = record.filter(|r| r.tenant == tenant.as_str()) else {
                return Ok(false);
            };
            let mut age = db_try!("open", txn.open_table(BY_AGE));
            let mut totals = db_try!("open", txn.open_table(TOTALS));
            let size =
                db_try!("delete", age.remove((record.created_at, id))).map_or(0, |v| v.value());
            db_try!("delete", records.remove(id));
            let bytes = read_total(&totals, BYTES)?.saturating_sub(size);
            let count = read_total(&totals, COUNT)?.saturating_sub(1);
            db_try!("write", totals.insert(BYTES, bytes));
            db_try!("write", totals.insert(COUNT, count));
        }
        db_try!("commit", txn.commit());
        self.publish();
        Ok(true)
    }

    fn stats(&self) -> ResponseStoreStats {
        let read = || -> Result<ResponseStoreStats, ResponseStoreError> {
            let txn = db_try!("begin", self.db.begin_read());
            let totals = db_try!("open", txn.open_table(TOTALS));
            Ok(ResponseStoreStats {
                responses: read_total(&totals, COUNT)?,
                bytes: read_total(&totals, BYTES)?,
            })
        };
        read().unwrap_or_default()
    }
}

/// A session as it is kept: its tenant as a plain string beside it.
#[derive(Serialize, Deserialize)]
struct SessionRecord {
    tenant: String,
    session: Session,
}

fn session_error(e: ResponseStoreError) -> SessionStoreError {
    SessionStoreError(e.0)
}

impl ResponseDb {
    fn read_session(&self, id: &str) -> Result<Option<SessionRecord>, ResponseStoreError> {
        let txn = db_try!("begin", self.db.begin_read());
        let table = db_try!("open", txn.open_table(SESSIONS));
        let Some(bytes) = db_try!("read", table.get(id)) else {
            return Ok(None);
        };
        serde_json::from_slice(bytes.value())
            .map(Some)
            .map_err(|e| ResponseStoreError(format!("session {id} is unreadable: {e}")))
    }

    fn write_session(&self, stored: &StoredSession) -> Result<(), ResponseStoreError> {
        let id = stored.session.id.as_str();
        let record = SessionRecord {
            tenant: stored.tenant.as_str().to_owned(),
            session: stored.session.clone(),
        };
        let bytes = serde_json::to_vec(&record)
            .map_err(|e| ResponseStoreError(format!("cannot encode session {id}: {e}")))?;
        let txn = db_try!("begin", self.db.begin_write());
        {
            let mut table = db_try!("open", txn.open_table(SESSIONS));
            // Ids are the server's, unique per session: one held by another
            // tenant is never overwritten.
            if let Some(old) = db_try!("read", table.get(id)) {
                let old: Option<SessionRecord> = serde_json::from_slice(old.value()).ok();
                if old.is_some_and(|o| o.tenant != record.tenant) {
                    return Err(ResponseStoreError(format!(
                        "session {id} belongs to another tenant"
                    )));
                }
            }
            db_try!("write", table.insert(id, bytes.as_slice()));
        }
        db_try!("commit", txn.commit());
        Ok(())
    }

    fn remove_session(&self, tenant: &TenantId, id: &str) -> Result<bool, ResponseStoreError> {
        let txn = db_try!("begin", self.db.begin_write());
        {
            let mut table = db_try!("open", txn.open_table(SESSIONS));
            let owned = match db_try!("read", table.get(id)) {
                Some(bytes) => serde_json::from_slice::<SessionRecord>(bytes.value())
                    .is_ok_and(|r| r.tenant == tenant.as_str()),
                None => false,
            };
            if !owned {
                return Ok(false);
            }
            db_try!("delete", table.remove(id));
        }
        db_try!("commit", txn.commit());
        Ok(true)
    }
}

impl SessionStore for ResponseDb {
    fn put_session(&self, session: &StoredSession) -> Result<(), SessionStoreError> {
        self.write_session(session).map_err(session_error)
    }

    fn get_session(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<StoredSession>, SessionStoreError> {
        let record = self.read_session(id).map_err(session_error)?;
        Ok(record
            .filter(|r| r.tenant == tenant.as_str())
            .map(|r| StoredSession {
                tenant: tenant.clone(),
                session: r.session,
            }))
    }

    fn delete_session(&self, tenant: &TenantId, id: &str) -> Result<bool, SessionStoreError> {
        self.remove_session(tenant, id).map_err(session_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(id: &str, tenant: &str, created_at: u64, body_len: usize) -> StoredResponse {
        StoredResponse {
            id: id.to_owned(),
            tenant: TenantId::parse(tenant).unwrap(),
            previous: None,
            agent: Some(AgentId::parse(id).unwrap()),
            created_at,
            response: "x".repeat(body_len),
            input_items: "[]".to_owned(),
            reply_text: "hi".to_owned(),
        }
    }

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    #[test]
    fn a_response_survives_reopening_and_stays_with_its_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let now = now_unix();
        let stored = response("resp_a", "alice", now, 100);
        {
            let db = ResponseDb::open(dir.path(), ResponseBudget::default()).unwrap();
            db.put(&stored).unwrap();
            assert!(db.put(&stored).is_err(), "ids are unique");
        }
        let db = ResponseDb::open(dir.path(), ResponseBudget::default()).unwrap();
        assert_eq!(db.get(&tenant("alice"), "resp_a").unwrap(), Some(stored));
        assert_eq!(db.get(&tenant("bob"), "resp_a").unwrap(), None);
        assert!(!db.delete(&tenant("bob"), "resp_a").unwrap(), "not bob's");
        assert_eq!(db.stats().responses, 1);
        assert!(db.delete(&tenant("alice"), "resp_a").unwrap());
        assert_eq!(db.get(&tenant("alice"), "resp_a").unwrap(), None);
        assert_eq!(db.stats(), ResponseStoreStats::default());
    }

    #[test]
    fn a_session_survives_reopening_and_stays_with_its_tenant() {
        use semantic_domain::sessions::{NewParticipant, NewSession, TurnUsage};
        let dir = tempfile::tempdir().unwrap();
        let spec = NewSession {
            participants: vec![NewParticipant {
                id: "a".into(),
                ..NewParticipant::default()
            }],
            topology: "round_robin".into(),
            moderator: None,
            max_turns: None,
            sampling: semantic_domain::SamplingParams::greedy(4),
            initial_prompt: Some("hi".into()),
        };
        let mut session = Session::create("sess_1".into(), 1, spec).unwrap();
        let stored = |session: &Session| StoredSession {
            tenant: tenant("alice"),
            session: session.clone(),
        };
        {
            let db = ResponseDb::open(dir.path(), ResponseBudget::default()).unwrap();
            db.put_session(&stored(&session)).unwrap();
            session
                .add_reply(2, 0, "hello".into(), TurnUsage::default(), None)
                .unwrap();
            db.put_session(&stored(&session)).unwrap();
            let theirs = StoredSession {
                tenant: tenant("bob"),
                session: session.clone(),
            };
            assert!(db.put_session(&theirs).is_err(), "not bob's to overwrite");
        }
        let db = ResponseDb::open(dir.path(), ResponseBudget::default()).unwrap();
        let back = db.get_session(&tenant("alice"), "sess_1").unwrap().unwrap();
        assert_eq!(back.session, session);
        assert_eq!(db.get_session(&tenant("bob"), "sess_1").unwrap(), None);
        assert!(!db.delete_session(&tenant("bob"), "sess_1").unwrap());
        assert!(db.delete_session(&tenant("alice"), "sess_1").unwrap());
        assert_eq!(db.get_session(&tenant("alice"), "sess_1").unwrap(), None);
        assert_eq!(
            db.stats(),
            ResponseStoreStats::default(),
            "not in the responses' totals"
        );
    }

    #[test]
    fn the_oldest_go_first_past_the_byte_budget() {
        let one = response("resp_1", "t", 0, 1000).size_bytes();
        let budget = ResponseBudget {
            max_bytes: one * 3,
            ttl_secs: u64::MAX,
        };
        let db = ResponseDb::in_memory(budget).unwrap();
        for i in 1..=5 {
            db.put(&response(&format!("resp_{i}"), "t", i, 1000))
                .unwrap();
        }
        let t = tenant("t");
        let kept: Vec<bool> = (1..=5)
            .map(|i| db.get(&t, &format!("resp_{i}")).unwrap().is_some())
            .collect();
        assert_eq!(kept, [false, false, true, true, true]);
        assert_eq!(db.stats().responses, 3);
        assert_eq!(db.stats().bytes, one * 3);
        let huge = response("resp_huge", "t", 9, (one * 4) as usize);
        assert!(db.put(&huge).is_err(), "larger than the whole budget");
    }

    #[test]
    fn expired_responses_are_gone() {
        let budget = ResponseBudget {
            max_bytes: u64::MAX,
            ttl_secs: 60,
        };
        let db = ResponseDb::in_memory(budget).unwrap();
        let now = now_unix();
        db.put(&response("resp_old", "t", now - 120, 10)).unwrap();
        db.put(&response("resp_new", "t", now, 10)).unwrap();
        let t = tenant("t");
        assert_eq!(db.get(&t, "resp_old").unwrap(), None, "read as gone");
        assert!(db.get(&t, "resp_new").unwrap().is_some());
        // The next write sweeps it from the file.
        db.put(&response("resp_next", "t", now, 10)).unwrap();
        assert_eq!(db.stats().responses, 2);
    }
}
