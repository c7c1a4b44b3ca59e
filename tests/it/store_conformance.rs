//! One conformance suite for every store: each check runs against SQLite and against
//! PostgreSQL (when SWITCHYARD_TEST_POSTGRES_URL is set; `.ci/run` sets it), so the two cannot
//! drift.

use std::collections::HashSet;
use std::sync::Arc;

use switchyard::activations::{RecordFormat, SyncOptions, preview};
use switchyard::domain::access::TokenScope;
use switchyard::domain::account::{Account, AccountCreated, Token, Workspace};
use switchyard::domain::activation::{Activation, KeyState, RunRecord, STALLED_UPLOAD, SyncCounts, SyncMark, SyncRun, fingerprint};
use switchyard::domain::audit::{Actor, AuditEntry, AuditFilter};
use switchyard::domain::delivery::DeliveryStatus;
use switchyard::domain::delivery::{Attempt, DeliveryCounts, DeliveryFilter, FailedSet, LogPosition, RetryRequest};
use switchyard::domain::destination::Destination;
use switchyard::domain::destination::{DestinationMethod, QueryParam};
use switchyard::domain::endpoint::Endpoint;
use switchyard::domain::event::Event;
use switchyard::domain::event::EventFilter;
use switchyard::domain::event_types::EventType;
use switchyard::domain::fanout::{TargetKind, TargetRef, WorkspaceScope};
use switchyard::domain::health::HealthView;
use switchyard::domain::health::TargetHealth;
use switchyard::domain::ids::{AccountId, DeliveryId, EventId, TargetId};
use switchyard::domain::integration::Integration;
use switchyard::domain::integration::{HubspotConfig, IntegrationConfig};
use switchyard::domain::mailer::{Mailer, MailerProvider, MailerRule, Template, TemplateParam};
use switchyard::domain::ownership::NodeInfo;
use switchyard::domain::ownership::Ordering;
use switchyard::domain::portal::{PortalSession, Theme};
use switchyard::domain::queue::{AttemptResult, ClaimOrder, ClaimedDelivery};
use switchyard::domain::receiver_auth::{ReceiverAuth, StaticHeader, StoredReceiverAuth};
use switchyard::domain::signing::StoredSecret;
use switchyard::domain::suppression::{Suppression, SuppressionFilter, SuppressionReason};
use switchyard::domain::task::Task;
use switchyard::domain::time::{Millis, now_ms};
use switchyard::domain::timeline::{CountRow, Latency, LatencyRow};
use switchyard::domain::window::Window;
use switchyard::store::*;
use uuid::Uuid;

use crate::common;

const PG_ENV: &str = "SWITCHYARD_TEST_POSTGRES_URL";

/// What a store's data lives in, kept while the store is used, removed afterwards.
#[allow(dead_code)] // held for its Drop
enum Keep {
    Dir(tempfile::TempDir),
    Schema(common::PgSchema),
}

/// A fresh store of each kind: SQLite in a temp dir, PostgreSQL in a new schema.
async fn stores() -> Vec<(&'static str, Arc<dyn Store>, Keep)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("c.db").to_string_lossy()).await.unwrap();
    let mut all: Vec<(&'static str, Arc<dyn Store>, Keep)> = vec![("sqlite", Arc::new(sqlite), Keep::Dir(dir))];
    match std::env::var(PG_ENV) {
        Ok(url) => {
            let schema = common::PgSchema::create("conformance").await.expect("the URL is set");
            let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
            let store = PostgresStore::connect(options.options([("search_path", schema.name())])).await.unwrap();
            all.push(("postgres", Arc::new(store), Keep::Schema(schema)));
        }
        Err(_) => {
            eprintln!("SKIPPING the PostgreSQL half of the store conformance suite: set {PG_ENV} (e.g. postgres://postgres@127.0.0.1:5432/test)")
        }
    }
    all
}

async fn account(store: &dyn Store) -> AccountId {
    store.add_token(&format!("acct-{}", Uuid::new_v4()), &Uuid::new_v4().to_string(), now_ms()).await.unwrap()
}

fn event(account: AccountId, event_type: &str, key: Option<&str>) -> Event {
    Event {
        id: EventId::now_v7(),
        account_id: account,
        event_type: event_type.into(),
        workspace_id: None,
        data: r#"{"email":"a@example.com"}"#.into(),
        idempotency_key: key.map(Into::into),
        created_at: now_ms(),
        traceparent: None,
    }
}

async fn endpoint(store: &dyn Store, account: AccountId, events: &[&str]) -> TargetId {
    limited_endpoint(store, account, events, None).await
}

async fn limited_endpoint(store: &dyn Store, account: AccountId, events: &[&str], rate_limit: Option<u32>) -> TargetId {
    let now = now_ms();
    let ep = Endpoint {
        id: TargetId::now_v7(),
        account_id: account,
        created_by: Uuid::now_v7(),
        url: "https://example.com/hook".into(),
        description: String::new(),
        secret_prefix: "whsec_abc".into(),
        events: events.iter().map(|e| e.to_string()).collect(),
        workspaces: WorkspaceScope::All,
        is_active: true,
        rate_limit,
        ordering: Ordering::Unordered,
        receiver_auth: None,
        propagate_trace: false,
        created_at: now,
        updated_at: now,
    };
    let secret = StoredSecret { id: Uuid::now_v7(), ciphertext: vec![1, 2, 3], created_at: now, expires_at: None };
    store.insert_endpoint(&ep, &secret).await.unwrap();
    ep.id
}

/// The result of one attempt of a claimed delivery, answered with `code`.
fn result_of(claimed: &ClaimedDelivery, status: DeliveryStatus, code: u16, at: i64, next_attempt_at: i64) -> AttemptResult {
    AttemptResult {
        lease_token: claimed.lease_token,
        target: claimed.target,
        status,
        next_attempt_at,
        last_error: None,
        keep_lease: false,
        target_failing: false,
        attempt: Attempt {
            id: Uuid::now_v7(),
            delivery_id: claimed.delivery_id,
            attempt_number: 1,
            started_at: at,
            duration_ms: 1,
            http_status_code: Some(code),
            error_kind: None,
            error_message: None,
            response_excerpt: String::new(),
            response_headers: vec![("x-request-id".into(), format!("r-{code}"))],
            manual: false,
            // The store keeps any id it is given (the engine gives a mailer's fallback).
            sent_by: (code == 204).then_some(claimed.target.id),
        },
    }
}

#[tokio::test]
async fn accounts_tokens_workspaces_and_catalog() {
    for (name, store, _dir) in stores().await {
        let digest = Uuid::new_v4().to_string();
        let id = store.add_token("acme", &digest, now_ms()).await.unwrap();
        assert_eq!(store.add_token("acme", "another", now_ms()).await.unwrap(), id, "{name}: same account");
        assert_eq!(store.token_by_digest(&digest, now_ms()).await.unwrap().unwrap().caller.account_id, id);
        assert!(store.token_by_digest("nope", now_ms()).await.unwrap().is_none());
        assert_eq!(store.list_event_types(id).await.unwrap().len(), 17, "{name}: the 14 defaults and 3 operational types");
        let et = EventType { name: "order.shipped".into(), description: String::new(), created_at: now_ms() };
        assert!(store.insert_event_type(id, &et).await.unwrap());
        assert!(!store.insert_event_type(id, &et).await.unwrap(), "{name}: duplicate refused");

        let ws = Workspace { id: Uuid::now_v7(), account_id: id, name: "A".into(), created_at: now_ms(), updated_at: now_ms() };
        store.insert_workspace(&ws).await.unwrap();
        let renamed = Workspace { name: "B".into(), ..ws.clone() };
        assert!(store.update_workspace(&renamed).await.unwrap());
        assert_eq!(store.get_workspace(id, ws.id).await.unwrap().unwrap().name, "B");
        assert!(store.get_workspace(AccountId::now_v7(), ws.id).await.unwrap().is_none(), "{name}: scoped by account");
        assert!(store.delete_workspace(id, ws.id).await.unwrap());
        assert!(store.list_workspaces(id).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn audit_entries_are_filed_unconfirmed_then_confirmed_or_discarded() {
    for (name, store, _dir) in stores().await {
        let account = account(store.as_ref()).await;
        let entry = |action: &str, confirmed| AuditEntry {
            id: Uuid::now_v7(),
            account_id: account,
            at: now_ms(),
            actor: Actor::Operator,
            action: action.into(),
            subject_id: None,
            fields: serde_json::json!({"name": "x"}),
            confirmed,
        };
        let (made, refused, after) = (entry("webhooks-create", false), entry("webhooks-update", false), entry("accounts-create", true));
        for e in [&made, &refused, &after] {
            assert!(store.insert_audit(e).await.unwrap(), "{name}");
        }
        assert!(
            !store.insert_audit(&AuditEntry { account_id: AccountId::now_v7(), ..entry("tokens-create", false) }).await.unwrap(),
            "{name}: no such account"
        );
        let subject = Uuid::now_v7();
        store.confirm_audit(made.id, Some(subject)).await.unwrap();
        store.discard_audit(refused.id).await.unwrap();
        store.discard_audit(after.id).await.unwrap();
        let all = store.list_audit(account, &AuditFilter { limit: 10, ..Default::default() }).await.unwrap();
        let seen: Vec<_> = all.iter().map(|e| (e.action.as_str(), e.confirmed, e.subject_id)).collect();
        assert_eq!(seen, [("accounts-create", true, None), ("webhooks-create", true, Some(subject))], "{name}: a confirmed entry is never discarded");
    }
}

#[tokio::test]
async fn accounts_by_external_id_and_scoped_expiring_revocable_tokens() {
    for (name, store, _dir) in stores().await {
        let now = now_ms();
        let acme = Account::new(&format!("acme-{}", Uuid::new_v4()), Some("cus_1"), now);
        assert_eq!(store.create_account(&acme).await.unwrap(), AccountCreated::Created(acme.clone()), "{name}");
        let same_key = Account::new("another name", Some("cus_1"), now);
        assert_eq!(store.create_account(&same_key).await.unwrap(), AccountCreated::Existing(acme.clone()), "{name}: idempotent on the external id");
        assert_eq!(store.create_account(&Account::new(&acme.name, None, now)).await.unwrap(), AccountCreated::NameTaken, "{name}");
        assert_eq!(store.account_by_name(&acme.name).await.unwrap(), Some(acme.clone()), "{name}");
        let beta = Account::new(&format!("beta-{}", Uuid::new_v4()), None, now);
        store.create_account(&beta).await.unwrap();
        assert_eq!(store.update_account(beta.id, &acme.name, None).await, Err(StoreError::Conflict("name")), "{name}");
        assert_eq!(store.update_account(beta.id, "beta renamed", Some("cus_1")).await, Err(StoreError::Conflict("external_id")), "{name}");
        assert!(store.update_account(beta.id, &format!("{} renamed", beta.name), Some("cus_2")).await.unwrap(), "{name}");
        assert_eq!(store.get_account(beta.id).await.unwrap().unwrap().external_id.as_deref(), Some("cus_2"), "{name}");
        let page = store.list_accounts_page(Some(acme.id), 10).await.unwrap();
        assert_eq!(page.iter().map(|a| a.id).collect::<Vec<_>>(), vec![beta.id], "{name}: accounts after the cursor, in creation order");

        let (token, record) = switchyard::crypto::api_token::issue(acme.id, "reader", TokenScope::ReadOnly, now, Some(now + 60_000));
        store.insert_token(&record).await.unwrap();
        let found = store.token_by_digest(&switchyard::crypto::api_token::digest(&token), now).await.unwrap().unwrap();
        assert_eq!((found.caller.scope, found.last_used_at), (TokenScope::ReadOnly, None), "{name}");
        assert!(store.token_by_digest(&record.digest, now + 60_000).await.unwrap().is_none(), "{name}: expired");
        store.mark_token_used(record.id, now + 5).await.unwrap();
        assert_eq!(store.list_tokens(acme.id).await.unwrap(), vec![Token { last_used_at: Some(now + 5), ..record.clone() }], "{name}");
        assert!(!store.revoke_token(beta.id, record.id).await.unwrap(), "{name}: not another account's");
        assert!(store.revoke_token(acme.id, record.id).await.unwrap(), "{name}");
        assert!(store.token_by_digest(&record.digest, now).await.unwrap().is_none(), "{name}: revoked");
    }
}

#[tokio::test]
async fn a_portal_code_is_spent_once_and_its_session_ends_on_time() {
    for (name, store, _dir) in stores().await {
        let acct = account(store.as_ref()).await;
        let now = now_ms();
        let session = PortalSession {
            id: Uuid::now_v7(),
            account_id: acct,
            code_digest: format!("code-{}", Uuid::new_v4()),
            code_expires_at: now + 600_000,
            session_digest: None,
            expires_at: now + 3_600_000,
            allowed_origins: vec!["https://app.example.com".into()],
            theme: Theme { product_name: Some("Acme".into()), ..Theme::default() },
            workspace_id: Some(Uuid::now_v7()),
            created_at: now,
        };
        store.insert_portal_session(&session).await.unwrap();
        assert_eq!(store.portal_session_by_code(&session.code_digest, now).await.unwrap().as_ref(), Some(&session), "{name}");
        assert!(store.portal_session_by_code(&session.code_digest, now + 600_000).await.unwrap().is_none(), "{name}: the code expired");
        assert!(store.exchange_portal_code(&session.code_digest, "s1", now + 600_000).await.unwrap().is_none(), "{name}: not after its time");
        let opened = store.exchange_portal_code(&session.code_digest, "s1", now).await.unwrap().unwrap();
        assert_eq!(opened.session_digest.as_deref(), Some("s1"), "{name}");
        assert!(store.exchange_portal_code(&session.code_digest, "s2", now).await.unwrap().is_none(), "{name}: spent");
        assert!(store.portal_session_by_code(&session.code_digest, now).await.unwrap().is_none(), "{name}: a spent code frames nowhere");
        assert_eq!(store.portal_session_by_token("s1", now + 3_599_999).await.unwrap().map(|s| s.id), Some(session.id), "{name}");
        assert!(store.portal_session_by_token("s1", now + 3_600_000).await.unwrap().is_none(), "{name}: the session ended");
        assert!(store.portal_session_by_token("s2", now).await.unwrap().is_none(), "{name}");
        store.start_account_deletion(acct, now).await.unwrap();
        assert!(store.portal_session_by_token("s1", now).await.unwrap().is_none(), "{name}: not for an account being deleted");
    }
}

#[tokio::test]
async fn a_deleted_account_loses_its_tokens_at_once_and_its_data_in_batches() {
    for (name, store, _dir) in stores().await {
        let acct = account(store.as_ref()).await;
        let other = account(store.as_ref()).await;
        let ep = endpoint(store.as_ref(), acct, &["contact.created"]).await;
        let kept = endpoint(store.as_ref(), other, &["contact.created"]).await;
        let digest = Uuid::new_v4().to_string();
        store.insert_token(&Token::new(acct, "t", TokenScope::Full, "", &digest, now_ms(), None)).await.unwrap();
        let events: Vec<Event> = (0..5).map(|_| event(acct, "contact.created", None)).chain([event(other, "contact.created", None)]).collect();
        store.accept_events(&events).await.unwrap();
        assert!(store.start_account_deletion(acct, now_ms()).await.unwrap(), "{name}");
        assert!(!store.start_account_deletion(acct, now_ms()).await.unwrap(), "{name}: once");
        assert!(store.token_by_digest(&digest, now_ms()).await.unwrap().is_none(), "{name}: its tokens are gone at once");
        assert!(store.get_account(acct).await.unwrap().unwrap().deleting_since.is_some(), "{name}");
        let mut batches = Vec::new();
        loop {
            match store.purge_deleted_accounts(2).await.unwrap() {
                0 => break,
                rows => batches.push(rows),
            }
        }
        assert_eq!(batches, vec![2, 2, 1, 2, 2, 1, 1], "{name}: 5 deliveries, then 5 events, 2 at a time, then the account row");
        assert_eq!(store.get_account(acct).await.unwrap(), None, "{name}");
        assert!(store.get_endpoint(acct, ep).await.unwrap().is_none(), "{name}");
        assert!(store.get_endpoint(other, kept).await.unwrap().is_some(), "{name}: another account keeps its own");
        assert_eq!(store.list_events(other, &EventFilter { limit: 10, ..Default::default() }).await.unwrap().len(), 1, "{name}");
    }
}

#[tokio::test]
async fn endpoints_and_secret_rotation() {
    for (name, store, _dir) in stores().await {
        let acct = account(store.as_ref()).await;
        let id = endpoint(store.as_ref(), acct, &["contact.created"]).await;
        let mut ep = store.get_endpoint(acct, id).await.unwrap().unwrap();
        ep.is_active = false;
        ep.events = vec!["contact.updated".into()];
        assert!(store.update_endpoint(&ep).await.unwrap());
        assert_eq!(store.list_endpoints(acct).await.unwrap(), vec![ep.clone()], "{name}");
        let now = now_ms();
        let new = StoredSecret { id: Uuid::now_v7(), ciphertext: vec![9], created_at: now, expires_at: None };
        assert!(store.rotate_endpoint_secret(acct, id, &new, "whsec_new", now + 60_000).await.unwrap());
        let target = store.webhook_target(id, now).await.unwrap().unwrap();
        assert_eq!(target.secrets.len(), 2, "{name}: both valid during the grace");
        assert_eq!(target.secrets[0].ciphertext, vec![9], "{name}: newest first");
        assert_eq!(store.webhook_target(id, now + 120_000).await.unwrap().unwrap().secrets.len(), 1, "{name}: the old one expired");
        assert!(store.delete_endpoint(acct, id).await.unwrap());
        assert!(store.get_endpoint(acct, id).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn accepting_events_fans_out_once_per_idempotency_key() {
    for (name, store, _dir) in stores().await {
        let acct = account(store.as_ref()).await;
        endpoint(store.as_ref(), acct, &["contact.created"]).await;
        endpoint(store.as_ref(), acct, &["contact.created", "contact.updated"]).await;
        let accepted = store.accept_events(&[event(acct, "contact.created", Some("k1")), event(acct, "contact.updated", None)]).await.unwrap();
        assert_eq!(accepted.iter().map(|a| a.delivery_count).collect::<Vec<_>>(), [2, 1], "{name}");
        let again = store.accept_events(&[event(acct, "contact.created", Some("k1"))]).await.unwrap();
        assert!(again[0].duplicate, "{name}");
        assert_eq!(again[0].event.id, accepted[0].event.id);
        assert_eq!(again[0].delivery_count, 2);
        assert_eq!(store.pending_count().await.unwrap(), 3, "{name}");
        // A key repeated within one call (group commit combines calls) is a duplicate of its first use.
        let twice = store.accept_events(&[event(acct, "contact.updated", Some("k2")), event(acct, "contact.updated", Some("k2"))]).await.unwrap();
        assert!(!twice[0].duplicate && twice[1].duplicate, "{name}");
        assert_eq!((twice[1].event.id, twice[1].delivery_count), (twice[0].event.id, 1), "{name}");
        assert_eq!(store.pending_count().await.unwrap(), 4, "{name}");

        let page = store.list_events(acct, &EventFilter { limit: 2, ..Default::default() }).await.unwrap();
        assert_eq!(page.len(), 2);
        assert!(page[0].0 < page[1].0, "{name}: seq increases");
        let after = store.list_events(acct, &EventFilter { after_seq: page[0].0, limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(after.len(), 2, "{name}: the event after the first, and the one keyed k2");
        let typed = EventFilter { types: vec!["contact.updated".into()], limit: 10, ..Default::default() };
        assert_eq!(store.list_events(acct, &typed).await.unwrap()[0].1.event_type, "contact.updated");
    }
}

#[tokio::test]
async fn claims_leases_results_and_retries() {
    for (name, store, _dir) in stores().await {
        let acct = account(store.as_ref()).await;
        let ep = endpoint(store.as_ref(), acct, &["contact.created"]).await;
        let other = endpoint(store.as_ref(), acct, &["contact.created"]).await;
        let traceparent = Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned());
        store.accept_events(&[Event { traceparent: traceparent.clone(), ..event(acct, "contact.created", None) }]).await.unwrap();
        let now = now_ms() + 1;

        let claimed = claim(store.as_ref(), ep, Uuid::new_v4(), now, 10, Ordering::Unordered).await;
        assert_eq!(claimed.len(), 1, "{name}: only the owner's target");
        assert_eq!(claimed[0].event.traceparent, traceparent, "{name}: the event's trace context comes with the claim");
        assert_eq!(claimed[0].target, TargetRef { kind: TargetKind::Webhook, id: ep });
        assert!(claim(store.as_ref(), ep, Uuid::new_v4(), now, 10, Ordering::Unordered).await.is_empty(), "{name}: held");
        let hints: std::collections::HashMap<TargetId, Option<Millis>> = store.due_hints(&[ep, other]).await.unwrap().into_iter().collect();
        assert_eq!(hints[&ep], None, "{name}: nothing of ep waits");
        assert!(hints[&other].is_some_and(|t| t < now), "{name}: the other target's delivery is due");
        assert_eq!(store.retry_delivery(acct, claimed[0].delivery_id, now).await.unwrap(), RetryRequest::InFlight, "{name}");

        let result = |c: &ClaimedDelivery, status| result_of(c, status, 204, now, now + 2000);
        // A result under another token (a former owner's) is recorded but cannot change the delivery.
        let stale = ClaimedDelivery { lease_token: Uuid::new_v4(), ..claimed[0].clone() };
        store.record_attempts(&[result(&stale, DeliveryStatus::Failed)]).await.unwrap();
        assert_eq!(store.get_delivery(acct, claimed[0].delivery_id).await.unwrap().unwrap().status, DeliveryStatus::Pending, "{name}");
        store.record_attempts(&[result(&claimed[0], DeliveryStatus::Delivered)]).await.unwrap();
        let delivery = store.get_delivery(acct, claimed[0].delivery_id).await.unwrap().unwrap();
        assert_eq!((delivery.status, delivery.http_status_code), (DeliveryStatus::Delivered, Some(204)), "{name}");
        assert_eq!(store.list_attempts(acct, delivery.id).await.unwrap().len(), 2);

        match store.retry_delivery(acct, delivery.id, now + 3000).await.unwrap() {
            RetryRequest::Requeued(d) => assert_eq!(d.status, DeliveryStatus::Pending, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(store.retry_delivery(AccountId::now_v7(), delivery.id, now).await.unwrap(), RetryRequest::NotFound, "{name}");
        let filtered = DeliveryFilter { target_id: Some(ep), status: Some(DeliveryStatus::Pending), limit: 10, ..Default::default() };
        assert_eq!(store.list_deliveries(acct, &filtered).await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_result_whose_target_was_deleted_meanwhile_does_not_hold_up_the_others() {
    for (name, store, _dir) in stores().await {
        let acct = account(store.as_ref()).await;
        let (gone, kept) = (endpoint(store.as_ref(), acct, &["contact.created"]).await, endpoint(store.as_ref(), acct, &["contact.created"]).await);
        store.accept_events(&[event(acct, "contact.created", None)]).await.unwrap();
        let now = now_ms() + 1;
        let mut claimed = claim(store.as_ref(), gone, Uuid::new_v4(), now, 10, Ordering::Unordered).await;
        claimed.extend(claim(store.as_ref(), kept, Uuid::new_v4(), now, 10, Ordering::Unordered).await);
        assert_eq!(claimed.len(), 2, "{name}");
        assert!(store.delete_endpoint(acct, gone).await.unwrap());
        let results: Vec<AttemptResult> = claimed.iter().map(|c| result_of(c, DeliveryStatus::Delivered, 204, now, now)).collect();
        store.record_attempts(&results).await.unwrap();
        let kept_delivery = claimed.iter().find(|c| c.target.id == kept).unwrap().delivery_id;
        assert_eq!(store.get_delivery(acct, kept_delivery).await.unwrap().unwrap().status, DeliveryStatus::Delivered, "{name}");
        let attempts = store.list_attempts(acct, kept_delivery).await.unwrap();
        assert_eq!(attempts.len(), 1, "{name}");
        assert_eq!(attempts[0].response_headers, vec![("x-request-id".to_owned(), "r-204".to_owned())], "{name}: the answer's headers kept");
        assert_eq!(attempts[0].sent_by, Some(kept), "{name}: who sent it kept");
    }
}

#[tokio::test]
async fn claims_take_due_rows_first_or_an_ordered_targets_in_acceptance_order() {
    for (name, store, _dir) in stores().await {
        let acct = account(store.as_ref()).await;
        let ep = endpoint(store.as_ref(), acct, &["contact.created"]).await;
        let events: Vec<Event> = (0..6).map(|_| event(acct, "contact.created", None)).collect();
        store.accept_events(&events).await.unwrap();
        let now = now_ms() + 1;
        let token = Uuid::new_v4();
        let first = claim(store.as_ref(), ep, token, now, 4, Ordering::Unordered).await;
        assert_eq!(first.len(), 4, "{name}: up to the limit");
        // The first two fail: one is retried much later, one soon; the other two are delivered.
        let later = result_of(&first[0], DeliveryStatus::Pending, 500, now, now + 60_000);
        let soon = result_of(&first[1], DeliveryStatus::Pending, 500, now, now + 10);
        let done: Vec<_> = first[2..].iter().map(|c| result_of(c, DeliveryStatus::Delivered, 204, now, now)).collect();
        store.record_attempts(&[vec![later, soon], done].concat()).await.unwrap();
        let hint = store.due_hints(&[ep]).await.unwrap()[0].1;
        assert!(hint.is_some_and(|t| t <= now), "{name}: two never attempted wait, due now");
        let next = claim(store.as_ref(), ep, token, now + 10, 10, Ordering::Unordered).await;
        let ids: Vec<DeliveryId> = next.iter().map(|c| c.delivery_id).collect();
        assert_eq!(ids.len(), 3, "{name}: the two never attempted and the retry due now, not the later one");
        assert_eq!(ids[2], first[1].delivery_id, "{name}: due first, due first out");
        assert_eq!(store.due_hints(&[ep]).await.unwrap()[0].1, Some(now + 60_000), "{name}");
        // Released again (a takeover), an ordered target's rows come back in acceptance order,
        // whatever their time: the one retried later is first.
        for c in &next {
            store.record_attempts(&[result_of(c, DeliveryStatus::Pending, 500, now, now + 60_000 + 1)]).await.unwrap();
        }
        let ordered = claim(store.as_ref(), ep, Uuid::new_v4(), now + 20, 10, Ordering::Fifo).await;
        let by_event: Vec<EventId> = ordered.iter().map(|c| c.event.id).collect();
        let accepted: Vec<EventId> = [&events[0], &events[1], &events[4], &events[5]].iter().map(|e| e.id).collect();
        assert_eq!(by_event, accepted, "{name}: acceptance order");
    }
}

#[tokio::test]
async fn ownership_moves_with_leases_and_accepting_leases_only_to_a_live_owner() {
    struct Plan(Uuid, TargetId, Uuid);
    impl LeasePlan for Plan {
        fn node(&self) -> Option<Uuid> {
            Some(self.0)
        }
        fn token_for(&self, target: TargetId) -> Option<Uuid> {
            (target == self.1).then_some(self.2)
        }
    }
    for (name, store, _dir) in stores().await {
        let acct = account(store.as_ref()).await;
        let ep = endpoint(store.as_ref(), acct, &["contact.created"]).await;
        let (a, b) = (node(), node());
        let now = now_ms();
        for n in [&a, &b] {
            assert_eq!(store.heartbeat(n, now, now + 10_000, 0).await.unwrap(), [], "{name}: owns nothing yet");
        }
        assert_eq!(store.live_nodes(now).await.unwrap().len(), 2, "{name}");
        assert!(store.takeover_candidates(a.id, now, &[], 100).await.unwrap().contains(&ep), "{name}: unowned");
        let token_a = Uuid::new_v4();
        let taken = store.take_targets(a.id, &[(ep, token_a)], &[], now, now + 10_000, 15_000).await.unwrap();
        assert_eq!((taken.len(), taken[0].settle_until, taken[0].token), (1, now, token_a), "{name}: nobody to wait for");
        assert!(store.take_targets(b.id, &[(ep, Uuid::new_v4())], &[], now, now + 10_000, 15_000).await.unwrap().is_empty(), "{name}: a's");
        assert!(!store.takeover_candidates(b.id, now, &[], 100).await.unwrap().contains(&ep), "{name}");

        // Accepted while a owns it: written held by a, handed to a's lane.
        let accepted = store.accept_leasing(&[event(acct, "contact.created", None)], &Plan(a.id, ep, token_a)).await.unwrap();
        assert_eq!((accepted.leased.len(), accepted.unleased_targets.len()), (1, 0), "{name}");
        assert_eq!(accepted.leased[0].lease_token, token_a);
        // A plan with a stale token leases nothing.
        let stale = store.accept_leasing(&[event(acct, "contact.created", None)], &Plan(a.id, ep, Uuid::new_v4())).await.unwrap();
        assert_eq!((stale.leased.len(), stale.unleased_targets.as_slice()), (0, [ep].as_slice()), "{name}");
        let owned = store.heartbeat(&a, now + 1, now + 10_001, 0).await.unwrap();
        assert_eq!((owned.len(), owned[0].token, owned[0].expires_at), (1, token_a, now + 10_001), "{name}: renewed");

        // a goes silent: after its lease, b takes over, releases what a held, and waits a request
        // timeout and a rate window before sending.
        let later = now + 10_002;
        assert!(store.takeover_candidates(b.id, later, &[], 100).await.unwrap().contains(&ep), "{name}: expired");
        let token_b = Uuid::new_v4();
        let taken = store.take_targets(b.id, &[(ep, token_b)], &[], later, later + 10_000, 15_000).await.unwrap();
        assert_eq!(taken[0].settle_until, now + 10_001 + 15_000 + 1_000, "{name}");
        assert_eq!(store.heartbeat(&a, later, later + 10_000, 0).await.unwrap(), [], "{name}: a learns it lost it");
        let late = store.accept_leasing(&[event(acct, "contact.created", None)], &Plan(a.id, ep, token_a)).await.unwrap();
        assert_eq!(late.leased.len(), 0, "{name}: a no longer leases");
        let rows = claim(store.as_ref(), ep, token_b, later, 10, Ordering::Unordered).await;
        assert_eq!(rows.len(), 3, "{name}: b claims a's two and the late one");

        // b hands it back cleanly: whoever takes it next waits only for the rate window.
        store.release_targets(b.id, &[(ep, token_b)], later).await.unwrap();
        assert!(store.due_hints(&[ep]).await.unwrap()[0].1.is_some(), "{name}: b's rows are free again");
        let taken = store.take_targets(a.id, &[(ep, Uuid::new_v4())], &[], later + 1, later + 10_000, 15_000).await.unwrap();
        assert_eq!(taken[0].settle_until, later + 1_000, "{name}");
        // An owner whose process is known to be gone is taken over at once, waiting a rate window.
        let taken = store.take_targets(b.id, &[(ep, Uuid::new_v4())], &[a.id], later + 2, later + 10_000, 15_000).await.unwrap();
        assert_eq!(taken[0].settle_until, later + 2 + 1_000, "{name}");
    }
}

fn node() -> NodeInfo {
    NodeInfo { id: Uuid::new_v4(), host: "test-host".into(), pid: 1, process_start: 1 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_never_share_a_delivery() {
    for (name, store, _dir) in stores().await {
        let acct = account(store.as_ref()).await;
        let target = endpoint(store.as_ref(), acct, &["contact.created"]).await;
        let events: Vec<Event> = (0..200).map(|_| event(acct, "contact.created", None)).collect();
        store.accept_events(&events).await.unwrap();
        let now = now_ms() + 1;
        let claimers: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let batch = claim(store.as_ref(), target, Uuid::new_v4(), now, 7, Ordering::Unordered).await;
                        if batch.is_empty() {
                            return mine;
                        }
                        mine.extend(batch.into_iter().map(|c| c.delivery_id));
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for c in claimers {
            all.extend(c.await.unwrap());
        }
        assert_eq!(all.len(), 200, "{name}: every delivery claimed");
        assert_eq!(all.iter().collect::<HashSet<_>>().len(), 200, "{name}: none claimed twice");
    }
}

/// Receiver authentication as a target stores it: settings and sealed secrets (opaque here).
fn receiver_auth(tenant: &str) -> StoredReceiverAuth {
    let settings = ReceiverAuth {
        headers: vec![StaticHeader { name: "X-Tenant".into(), value: Some(tenant.into()), sensitive: false, value_hint: None }],
        ca_certificate_pem: Some("-----BEGIN CERTIFICATE-----".into()),
        ..Default::default()
    };
    StoredReceiverAuth { settings, sealed_secrets: tenant.as_bytes().to_vec() }
}

#[tokio::test]
async fn receiver_auth_is_stored_with_its_target() {
    for (name, store, _dir) in stores().await {
        let acct = account(store.as_ref()).await;
        let id = endpoint(store.as_ref(), acct, &["contact.created"]).await;
        let mut ep = store.get_endpoint(acct, id).await.unwrap().unwrap();
        assert_eq!(ep.receiver_auth, None, "{name}");
        ep.receiver_auth = Some(receiver_auth("acme"));
        ep.propagate_trace = true;
        ep.updated_at += 1;
        assert!(store.update_endpoint(&ep).await.unwrap(), "{name}");
        assert_eq!(store.get_endpoint(acct, id).await.unwrap().unwrap(), ep, "{name}");
        let settings = store.webhook_target(id, now_ms()).await.unwrap().unwrap();
        assert_eq!((settings.receiver_auth, settings.propagate_trace), (ep.receiver_auth.clone(), true), "{name}: the adapter gets them");
        ep.receiver_auth = None;
        assert!(store.update_endpoint(&ep).await.unwrap(), "{name}");
        assert_eq!(store.webhook_target(id, now_ms()).await.unwrap().unwrap().receiver_auth, None, "{name}: removed");
    }
}

#[tokio::test]
async fn integrations_destinations_and_activations() {
    for (name, store, _dir) in stores().await {
        let acct = account(store.as_ref()).await;
        let other = account(store.as_ref()).await;
        let now = now_ms();
        let integration = Integration {
            id: TargetId::now_v7(),
            account_id: acct,
            name: "HubSpot Integration".into(),
            config: IntegrationConfig::Hubspot(HubspotConfig {}),
            mapping: Vec::new(),
            events: vec!["participant.completed".into()],
            workspaces: WorkspaceScope::Only(vec![Uuid::now_v7()]),
            is_active: true,
            rate_limit: None,
            ordering: Ordering::Unordered,
            secret: Some(vec![7, 7]),
            secret_hint: Some("pat-…".into()),
            signing_secret_prefix: None,
            receiver_auth: None,
            propagate_trace: false,
            created_at: now,
            updated_at: now,
        };
        store.insert_integration(&integration, None).await.unwrap();
        assert_eq!(store.get_integration(acct, integration.id).await.unwrap(), Some(integration.clone()), "{name}");
        let renamed = Integration {
            name: "CRM".into(),
            is_active: false,
            rate_limit: Some(3),
            receiver_auth: Some(receiver_auth("integration")),
            propagate_trace: true,
            updated_at: now + 1,
            ..integration.clone()
        };
        assert!(store.update_integration(&renamed).await.unwrap(), "{name}");
        assert!(!store.update_integration(&Integration { account_id: other, ..renamed.clone() }).await.unwrap(), "{name}: not another account's");
        assert_eq!(store.list_integrations(acct).await.unwrap(), vec![renamed.clone()], "{name}");
        assert!(store.list_integrations(other).await.unwrap().is_empty(), "{name}");
        assert_eq!(store.integration_target(integration.id, now).await.unwrap().unwrap().0, renamed);
        assert!(!store.delete_integration(other, integration.id).await.unwrap(), "{name}");
        assert!(store.delete_integration(acct, integration.id).await.unwrap());

        let destination = Destination {
            url: "https://example.com/hook?foo=bar".into(),
            method: DestinationMethod::Delete,
            query_params: vec![QueryParam { query_key: "n".into(), column: "n".into() }],
            receiver_auth: Some(receiver_auth("destination")),
            propagate_trace: true,
            created_at: now,
            updated_at: now,
            ..destination_of(acct)
        };
        store.insert_destination(&destination).await.unwrap();
        assert_eq!(store.destination_target(destination.id).await.unwrap(), Some(destination.clone()), "{name}");
        let moved = Destination {
            url: "https://example.com/other".into(),
            method: DestinationMethod::Patch,
            receiver_auth: None,
            updated_at: now + 1,
            ..destination.clone()
        };
        assert!(store.update_destination(&moved).await.unwrap(), "{name}");
        assert!(!store.update_destination(&Destination { account_id: other, ..moved.clone() }).await.unwrap(), "{name}");
        assert_eq!(store.list_destinations(acct).await.unwrap(), vec![moved.clone()], "{name}");
        assert_eq!(store.get_destination(acct, destination.id).await.unwrap(), Some(moved.clone()), "{name}");
        assert_eq!(store.get_destination(other, destination.id).await.unwrap(), None, "{name}: not another account's");
        let destination = moved;

        let run = Event { event_type: "activation.run".into(), data: "{}".into(), ..event(acct, "activation.run", None) };
        let activation = Activation {
            id: Uuid::now_v7(),
            account_id: acct,
            destination_id: destination.id,
            event_id: run.id,
            total: 0,
            created_at: now,
            started_at: None,
            cancelled_at: None,
            sync: None,
        };
        assert_eq!(store.create_activation(&activation, &[&run]).await.unwrap(), None);
        let records = plain_records((0..1200).map(|n| format!(r#"{{"n":{n}}}"#)));
        store.add_activation_records(&activation, &records[..700], now_ms()).await.unwrap();
        store.add_activation_records(&activation, &records[700..], now_ms()).await.unwrap();
        assert!(claim_due(store.as_ref(), now_ms() + 1, 10).await.is_empty(), "{name}: held until released");
        assert!(store.get_activation(Some(acct), activation.id).await.unwrap().is_none(), "{name}: not listed before release");
        store.release_activation(&Activation { total: 1200, ..activation.clone() }, now_ms()).await.unwrap();
        let (a, counts) = store.get_activation(Some(acct), activation.id).await.unwrap().unwrap();
        assert_eq!((a.total, counts.pending), (1200, 1200), "{name}");
        let page = store.activation_records(acct, activation.id, Some(999), None, 500).await.unwrap();
        assert_eq!(page.iter().map(|r| r.index).collect::<Vec<_>>(), (1000..1200).collect::<Vec<_>>(), "{name}");
        assert_eq!(page[0].record.as_deref(), Some(r#"{"n":1000}"#));
        assert!(store.cancel_activation(acct, activation.id, now_ms()).await.unwrap());
        let (_, counts) = store.get_activation(None, activation.id).await.unwrap().unwrap();
        assert_eq!((counts.pending, counts.cancelled), (0, 1200), "{name}");
        assert_eq!(store.list_activations(acct, None, 10).await.unwrap().len(), 1);
        assert_eq!(store.list_activations(acct, Some(&[activation.destination_id]), 10).await.unwrap().len(), 1, "{name}");
        assert_eq!(store.list_activations(acct, Some(&[]), 10).await.unwrap().len(), 0, "{name}: within no destination");

        store.discard_activation(activation.id).await.unwrap();
        assert!(store.get_activation(None, activation.id).await.unwrap().is_some(), "{name}: a released activation is never discarded");
        let refused = Activation { id: Uuid::now_v7(), event_id: EventId::now_v7(), ..activation.clone() };
        let refused_run = Event { id: refused.event_id, ..run.clone() };
        store.create_activation(&refused, &[&refused_run]).await.unwrap();
        store.add_activation_records(&refused, &records[..10], now_ms()).await.unwrap();
        store.discard_activation(refused.id).await.unwrap();
        assert!(store.get_activation(None, refused.id).await.unwrap().is_none(), "{name}: discarded");
        assert!(store.delete_destination(acct, destination.id).await.unwrap());
    }
}

/// Claims up to `limit` of `target`'s deliveries nobody holds, as its owner would.
#[tokio::test]
async fn mailers_are_stored_listed_verified_updated_and_deleted() {
    for (name, store, _dir) in stores().await {
        let (acct, other) = (account(store.as_ref()).await, account(store.as_ref()).await);
        let now = now_ms();
        let mailer = Mailer {
            id: TargetId::now_v7(),
            account_id: acct,
            name: "Transactional".into(),
            provider: MailerProvider::Sendgrid,
            sender_name: "Acme".into(),
            sender_email: Some("noreply@acme.test".into()),
            reply_to: Some("help@acme.test".into()),
            bcc: None,
            config: serde_json::Map::new(),
            credentials: Some(vec![1, 2, 3]),
            credential_hints: serde_json::json!({"api_key": "SG.…xyz"}).as_object().unwrap().clone(),
            template_params: vec![TemplateParam { parameter_name: "first".into(), source_field: "first_name".into() }],
            rules: vec![MailerRule {
                event_type: "participant.completed".into(),
                template: Template::Stored("d-123".into()),
                recipient_field: "email".into(),
            }],
            workspaces: WorkspaceScope::All,
            is_active: true,
            rate_limit: Some(5),
            verified: false,
            verified_at: None,
            fallback_mailer_id: Some(TargetId::now_v7()),
            webhook_key: Some(vec![4, 5, 6]),
            webhook_key_hint: Some("…xyz".into()),
            created_at: now,
            updated_at: now,
        };
        store.insert_mailer(&mailer).await.unwrap();
        assert_eq!(store.list_mailers(acct).await.unwrap(), vec![mailer.clone()], "{name}");
        assert!(store.list_mailers(other).await.unwrap().is_empty(), "{name}: another account sees none");
        assert_eq!(store.get_mailer(other, mailer.id).await.unwrap(), None, "{name}");
        assert!(!store.mark_mailer_verified(acct, mailer.id, now - 1, now + 1).await.unwrap(), "{name}: tested with a version since changed");
        assert!(!store.mark_mailer_verified(other, mailer.id, now, now + 1).await.unwrap(), "{name}: not another account's");
        assert!(store.mark_mailer_verified(acct, mailer.id, now, now + 1).await.unwrap(), "{name}");
        let verified = store.get_mailer(acct, mailer.id).await.unwrap().unwrap();
        assert_eq!((verified.verified, verified.verified_at), (true, Some(now + 1)), "{name}");
        let changed =
            Mailer { name: "Renamed".into(), rate_limit: None, rules: Vec::new(), fallback_mailer_id: None, updated_at: now + 2, ..verified };
        assert!(store.update_mailer(&changed).await.unwrap(), "{name}");
        assert!(!store.update_mailer(&Mailer { account_id: other, ..changed.clone() }).await.unwrap(), "{name}: not another account's");
        assert_eq!(store.mailer_target(mailer.id).await.unwrap(), Some(changed.clone()), "{name}");
        assert!(!store.delete_mailer(other, mailer.id).await.unwrap(), "{name}");
        assert!(store.delete_mailer(acct, mailer.id).await.unwrap(), "{name}");
        assert_eq!(store.mailer_target(mailer.id).await.unwrap(), None, "{name}");
    }
}

#[tokio::test]
async fn a_direct_send_is_one_delivery_with_its_params_and_only_postgres_tells_of_work() {
    for (name, store, _dir) in stores().await {
        let acct = account(store.as_ref()).await;
        let hook = endpoint(store.as_ref(), acct, &["contact.created"]).await;
        let mut notices = store.listen_for_work().await.unwrap();
        assert_eq!(notices.is_some(), name == "postgres", "{name}: LISTEN/NOTIFY only where the database has it");
        let target = TargetRef { kind: TargetKind::Webhook, id: hook };
        // Fan-out is bypassed: the endpoint is not subscribed to this type, and gets it anyway.
        let send = event(acct, "mail.direct", None);
        let delivery = store.enqueue_direct(&send, target, r#"{"to":"a@b.test"}"#).await.unwrap();
        assert_eq!((delivery.event_id, delivery.target, delivery.status), (send.id, target, DeliveryStatus::Pending), "{name}");
        if let Some(notices) = notices.as_mut() {
            // The channel is the database's: tests in other schemas send notices on it too.
            let ours = async {
                while let Some(noticed) = notices.recv().await {
                    if noticed.contains(&hook) {
                        return;
                    }
                }
            };
            tokio::time::timeout(std::time::Duration::from_secs(30), ours).await.expect("the owner is told of the new work");
        }
        let claimed = claim_due(store.as_ref(), now_ms() + 1, 10).await;
        assert_eq!(
            claimed.iter().map(|c| (c.delivery_id, c.params.as_deref())).collect::<Vec<_>>(),
            vec![(delivery.id, Some(r#"{"to":"a@b.test"}"#))],
            "{name}"
        );
    }
}

async fn claim(store: &dyn Store, target: TargetId, token: Uuid, now: Millis, limit: u32, ordering: Ordering) -> Vec<ClaimedDelivery> {
    let order = ClaimOrder { target, token, limit, ordering, now };
    store.record_and_claim(&[], &[order]).await.unwrap().claimed.remove(0).deliveries
}

/// Claims the due deliveries of every target nobody owns (each up to `limit`), with one token.
async fn claim_due(store: &dyn Store, now: Millis, limit: u32) -> Vec<ClaimedDelivery> {
    let token = Uuid::new_v4();
    let mut all = Vec::new();
    for target in store.takeover_candidates(Uuid::nil(), now, &[], 1000).await.unwrap() {
        all.extend(claim(store, target, token, now, limit, Ordering::Unordered).await);
    }
    all
}

/// Claims every due delivery and records each with `status`, answering `code` with `excerpt`.
async fn settle_all(store: &dyn Store, status: DeliveryStatus, code: u16, excerpt: &str) -> Vec<DeliveryId> {
    let now = now_ms();
    let claimed = claim_due(store, now, 1000).await;
    let results: Vec<AttemptResult> = claimed
        .iter()
        .map(|c| {
            let mut r = result_of(c, status, code, now, now);
            r.attempt.response_excerpt = excerpt.into();
            r
        })
        .collect();
    store.record_attempts(&results).await.unwrap();
    claimed.iter().map(|c| c.delivery_id).collect()
}

#[tokio::test]
async fn retention_deletes_settled_payloads_and_keeps_recent_and_pending_ones() {
    for (name, store, _dir) in stores().await {
        let acct = account(store.as_ref()).await;
        endpoint(store.as_ref(), acct, &["contact.created"]).await;
        let now = now_ms();
        let aged = |ago: i64| Event { created_at: now - ago, ..event(acct, "contact.created", None) };
        let (old, old_pending, recent) = (aged(10_000), aged(9_000), aged(0));
        store.accept_events(std::slice::from_ref(&old)).await.unwrap();
        let settled = settle_all(store.as_ref(), DeliveryStatus::Delivered, 200, "thanks").await;
        store.accept_events(&[old_pending.clone(), recent.clone()]).await.unwrap();

        let cutoff = now - 5_000;
        let batch = store.expire_payloads(acct, cutoff, None, 500, now).await.unwrap();
        assert_eq!((batch.examined, batch.changed), (2, 1), "{name}: the old pending event keeps its payload");
        assert_eq!(batch.last.map(|p| p.id), Some(old_pending.id), "{name}: walked in creation order");
        let again = store.expire_payloads(acct, cutoff, None, 500, now).await.unwrap();
        assert_eq!((again.examined, again.changed), (1, 0), "{name}: expired events leave the walk");
        assert_eq!(store.expire_payloads(acct, cutoff, batch.last, 500, now).await.unwrap().examined, 0, "{name}: continues after");

        let events = store.list_events(acct, &EventFilter { limit: 10, ..Default::default() }).await.unwrap();
        let data = |id: EventId| events.iter().find(|(_, e)| e.id == id).unwrap().1.data.clone();
        assert_eq!(data(old.id), switchyard::domain::retention::EXPIRED_DATA, "{name}");
        assert_eq!((data(old_pending.id), data(recent.id)), (old_pending.data.clone(), recent.data.clone()), "{name}");
        let delivery = store.get_delivery(acct, settled[0]).await.unwrap().unwrap();
        assert_eq!((delivery.status, delivery.payload_expired_at), (DeliveryStatus::Delivered, Some(now)), "{name}: the row stays");
        let attempts = store.list_attempts(acct, delivery.id).await.unwrap();
        assert_eq!((attempts.len(), attempts[0].response_excerpt.as_str(), attempts[0].http_status_code), (1, "", Some(200)), "{name}");
        assert!(attempts[0].response_headers.is_empty(), "{name}: the answer's headers go with its excerpt");
        assert_eq!(store.retry_delivery(acct, delivery.id, now).await.unwrap(), RetryRequest::PayloadExpired, "{name}");
        // The pending delivery still goes out with its payload.
        let claimed = claim_due(store.as_ref(), now_ms(), 10).await;
        assert!(claimed.iter().any(|c| c.event.id == old_pending.id && c.event.data == old_pending.data), "{name}");
        store.reclaim_space(100).await.unwrap();
    }
}

#[tokio::test]
async fn retention_deletes_activation_records_once_settled() {
    for (name, store, _dir) in stores().await {
        let acct = account(store.as_ref()).await;
        let now = now_ms();
        let destination = destination(store.as_ref(), acct).await;
        let run = Event { data: "{}".into(), ..event(acct, "activation.run", None) };
        let activation = Activation {
            id: Uuid::now_v7(),
            account_id: acct,
            destination_id: destination.id,
            event_id: run.id,
            total: 0,
            created_at: now,
            started_at: None,
            cancelled_at: None,
            sync: None,
        };
        store.create_activation(&activation, &[&run]).await.unwrap();
        store.add_activation_records(&activation, &plain_records([r#"{"n":1}"#.into(), r#"{"n":2}"#.into()]), now_ms()).await.unwrap();
        let later = now_ms() + 1000;
        assert_eq!(store.expire_payloads(acct, later, None, 500, later).await.unwrap().changed, 0, "{name}: still uploading");
        store.release_activation(&Activation { total: 2, ..activation.clone() }, now_ms()).await.unwrap();
        assert_eq!(store.expire_payloads(acct, later, None, 500, later).await.unwrap().changed, 0, "{name}: records pending");
        assert!(store.cancel_activation(acct, activation.id, now_ms()).await.unwrap());
        assert_eq!(store.expire_payloads(acct, later, None, 500, later).await.unwrap().changed, 1, "{name}: settled");
        let records = store.activation_records(acct, activation.id, None, None, 10).await.unwrap();
        assert_eq!(records.iter().map(|r| r.record.clone()).collect::<Vec<_>>(), [None, None], "{name}");
    }
}

/// Records of a run that is not a sync, numbered from 0.
fn plain_records(records: impl IntoIterator<Item = String>) -> Vec<RunRecord> {
    records.into_iter().enumerate().map(|(i, record)| RunRecord { index: i as u64, record, sync: None }).collect()
}

/// A query destination of `account`, not stored.
fn destination_of(account: AccountId) -> Destination {
    let now = now_ms();
    Destination {
        id: TargetId::now_v7(),
        account_id: account,
        name: "d".into(),
        url: "https://example.com/hook".into(),
        method: DestinationMethod::Post,
        query_params: Vec::new(),
        events: Vec::new(),
        workspaces: WorkspaceScope::All,
        is_active: true,
        rate_limit: None,
        receiver_auth: None,
        propagate_trace: false,
        created_at: now,
        updated_at: now,
    }
}

/// A stored query destination of `account`.
async fn destination(store: &dyn Store, account: AccountId) -> Destination {
    let destination = destination_of(account);
    store.insert_destination(&destination).await.unwrap();
    destination
}

/// Stores and releases a sync run (mirroring) of `destination` sending `records` as `(key,
/// record)`, a `None` record being a DELETE.
async fn sync_run(store: &dyn Store, destination: &Destination, records: &[(&str, Option<&str>)]) -> Activation {
    let activation = uploading_sync_run(store, destination, records).await;
    store.release_activation(&activation, now_ms()).await.unwrap();
    activation
}

/// A sync run as `sync_run` stores it, still being uploaded (not released).
async fn uploading_sync_run(store: &dyn Store, destination: &Destination, records: &[(&str, Option<&str>)]) -> Activation {
    let run = Event { data: "{}".into(), ..event(destination.account_id, "activation.run", None) };
    let deletes = Event { id: EventId::now_v7(), event_type: "activation.delete".into(), ..run.clone() };
    let activation = Activation {
        id: Uuid::now_v7(),
        account_id: destination.account_id,
        destination_id: destination.id,
        event_id: run.id,
        total: records.len() as u64,
        created_at: now_ms(),
        started_at: None,
        cancelled_at: None,
        sync: Some(SyncRun {
            key: "id".into(),
            mirror: true,
            delete_event_id: Some(deletes.id),
            counts: SyncCounts { new: 1, ..Default::default() },
        }),
    };
    assert_eq!(store.create_activation(&activation, &[&run, &deletes]).await.unwrap(), None, "no other sync run in progress");
    let records: Vec<RunRecord> = records
        .iter()
        .enumerate()
        .map(|(i, (key, record))| RunRecord {
            index: i as u64,
            record: record.map_or_else(|| format!(r#"{{"id":"{key}"}}"#), str::to_owned),
            sync: Some(SyncMark { key: key.to_string(), fingerprint: record.map(fingerprint) }),
        })
        .collect();
    store.add_activation_records(&activation, &records, now_ms()).await.unwrap();
    activation
}

/// Claims every due delivery and answers each with the code its record asks for (`"code"`).
async fn answer_by_record(store: &dyn Store) -> Vec<ClaimedDelivery> {
    let now = now_ms();
    let claimed = claim_due(store, now, 1000).await;
    let results: Vec<AttemptResult> = claimed
        .iter()
        .map(|c| {
            let record: serde_json::Value = serde_json::from_str(c.params.as_deref().unwrap()).unwrap();
            let code = record["code"].as_u64().unwrap_or(200) as u16;
            let (status, error) = if code < 300 { (DeliveryStatus::Delivered, None) } else { (DeliveryStatus::Failed, Some(format!("HTTP {code}"))) };
            AttemptResult { last_error: error, ..result_of(c, status, code, now, now) }
        })
        .collect();
    store.record_attempts(&results).await.unwrap();
    claimed
}

#[tokio::test]
async fn a_sync_upload_is_in_progress_until_it_stalls_and_a_stalled_one_is_discarded() {
    for (name, store, _dir) in stores().await {
        let acct = account(store.as_ref()).await;
        let dest = destination(store.as_ref(), acct).await;
        let uploading = uploading_sync_run(store.as_ref(), &dest, &[("a", Some(r#"{"id":"a"}"#))]).await;
        let progressed = now_ms();
        assert_eq!(store.sync_run_in_progress(dest.id, progressed - STALLED_UPLOAD).await.unwrap(), Some(uploading.id), "{name}: still uploading");
        let second = Activation { id: Uuid::now_v7(), event_id: EventId::now_v7(), created_at: now_ms(), ..uploading.clone() };
        let second_run = Event { id: second.event_id, data: "{}".into(), ..event(acct, "activation.run", None) };
        assert_eq!(store.create_activation(&second, &[&second_run]).await.unwrap(), Some(uploading.id), "{name}: refused as it is stored");
        let events = |store: Arc<dyn Store>| async move {
            let all = EventFilter { since: None, until: None, types: Vec::new(), workspace_id: None, after_seq: 0, limit: 100 };
            store.list_events(acct, &all).await.unwrap().into_iter().map(|(_, e)| e.id).collect::<Vec<_>>()
        };
        assert!(!events(store.clone()).await.contains(&second.event_id), "{name}: nothing of it stored");

        // No progress since: dead. It holds nothing up, and the janitor's step discards it alone.
        let stalled_before = progressed + 1;
        assert_eq!(store.sync_run_in_progress(dest.id, stalled_before).await.unwrap(), None, "{name}");
        let other_dest = destination(store.as_ref(), acct).await;
        let live = uploading_sync_run(store.as_ref(), &other_dest, &[("b", Some(r#"{"id":"b"}"#))]).await;
        store.add_activation_records(&live, &[], stalled_before + 1).await.unwrap();
        assert_eq!(store.discard_stalled_uploads(stalled_before, 100).await.unwrap(), 1, "{name}");
        let left = events(store.clone()).await;
        assert!(!left.contains(&uploading.event_id) && left.contains(&live.event_id), "{name}: its events are gone, the live one's stay");
        assert_eq!(store.sync_run_in_progress(other_dest.id, stalled_before).await.unwrap(), Some(live.id), "{name}: a live upload stays");
        assert_eq!(store.discard_stalled_uploads(stalled_before, 100).await.unwrap(), 0, "{name}");
    }
}

#[tokio::test]
async fn sync_runs_fold_into_the_state_deletes_and_rejected_records_go_again() {
    for (name, store, _dir) in stores().await {
        let acct = account(store.as_ref()).await;
        let dest = destination(store.as_ref(), acct).await;
        let (a, b, c) = (r#"{"id":"a"}"#, r#"{"code":422,"id":"b"}"#, r#"{"id":"c"}"#);
        let first = sync_run(store.as_ref(), &dest, &[("a", Some(a)), ("b", Some(b)), ("c", Some(c))]).await;
        assert_eq!(store.sync_run_in_progress(dest.id, now_ms() - STALLED_UPLOAD).await.unwrap(), Some(first.id), "{name}: its records are pending");
        let (got, _) = store.get_activation(Some(acct), first.id).await.unwrap().unwrap();
        assert_eq!(got.sync, first.sync, "{name}: the run's key, mirror and counts are kept");
        store.refresh_sync_state(dest.id, now_ms()).await.unwrap();
        assert!(store.sync_state_of(dest.id, &["a".into()]).await.unwrap().is_empty(), "{name}: nothing settled, nothing folded");

        answer_by_record(store.as_ref()).await;
        assert_eq!(store.sync_run_in_progress(dest.id, now_ms() - STALLED_UPLOAD).await.unwrap(), None, "{name}");
        store.refresh_sync_state(dest.id, now_ms()).await.unwrap();
        let state = store.sync_state_of(dest.id, &["a".into(), "b".into(), "c".into(), "z".into()]).await.unwrap();
        assert_eq!(state.len(), 3, "{name}");
        assert_eq!(state["a"], KeyState { fingerprint: fingerprint(a), rejected: false }, "{name}");
        assert!(state["b"].rejected, "{name}: a 4xx is rejected");

        // Retried on demand, b is rejected again; the run is folded again, with the same result.
        assert_eq!(store.retry_rejected(acct, first.id, now_ms()).await.unwrap(), 1, "{name}");
        assert_eq!(answer_by_record(store.as_ref()).await.len(), 1, "{name}: only the rejected record went again");

        // c leaves (a DELETE, delivered); a changes but the destination rejects it.
        let changed_a = r#"{"code":400,"id":"a","v":2}"#;
        let second = sync_run(store.as_ref(), &dest, &[("a", Some(changed_a)), ("c", None)]).await;
        answer_by_record(store.as_ref()).await;
        store.refresh_sync_state(dest.id, now_ms()).await.unwrap();
        let state = store.sync_state_of(dest.id, &["a".into(), "b".into(), "c".into()]).await.unwrap();
        assert_eq!(state.keys().cloned().collect::<HashSet<_>>(), HashSet::from(["a".to_owned(), "b".to_owned()]), "{name}: c is gone");
        assert_eq!(state["a"], KeyState { fingerprint: fingerprint(changed_a), rejected: true }, "{name}");
        let keys = store.synced_keys(dest.id, None, 1).await.unwrap();
        assert_eq!(keys, [("a".to_owned(), Some(changed_a.to_owned()))], "{name}: in key order, with the last record");
        assert_eq!(store.synced_keys(dest.id, Some("a"), 10).await.unwrap().len(), 1, "{name}: after a, b");

        // The first run folded again (its b retried once more) never undoes the second's a.
        assert_eq!(store.retry_rejected(acct, first.id, now_ms()).await.unwrap(), 1, "{name}");
        answer_by_record(store.as_ref()).await;
        store.refresh_sync_state(dest.id, now_ms()).await.unwrap();
        assert_eq!(store.sync_state_of(dest.id, &["a".into()]).await.unwrap()["a"].fingerprint, fingerprint(changed_a), "{name}");
        let keys: Vec<String> = store.synced_keys(dest.id, None, 10).await.unwrap().into_iter().map(|(key, _)| key).collect();
        assert_eq!(keys, ["a", "b"], "{name}: nor brings back c, which the second deleted");
        assert!(store.sync_state_of(dest.id, &["c".into()]).await.unwrap().is_empty(), "{name}: c is new again if it comes back");
        let (_, counts) = store.get_activation(None, second.id).await.unwrap().unwrap();
        assert_eq!((counts.succeeded, counts.client_errors), (1, 1), "{name}");

        // Retention: the records kept for DELETEs go, a batch at a time; keys and fingerprints stay.
        assert_eq!(store.expire_sync_records(acct, first.created_at, 500).await.unwrap(), 0, "{name}: none older than the cutoff");
        assert_eq!(store.expire_sync_records(acct, now_ms() + 1, 1).await.unwrap(), 1, "{name}: one at a time");
        assert_eq!(store.expire_sync_records(acct, now_ms() + 1, 500).await.unwrap(), 1, "{name}: then the other");
        assert_eq!(store.synced_keys(dest.id, None, 10).await.unwrap(), [("a".to_owned(), None), ("b".to_owned(), None)], "{name}");
        assert_eq!(store.sync_state_of(dest.id, &["a".into()]).await.unwrap()["a"].fingerprint, fingerprint(changed_a), "{name}");
        // A mirror's DELETE of a key whose record is gone is built from the key, in its column.
        let keyed = Destination { query_params: vec![QueryParam { query_key: "key".into(), column: "id".into() }], ..dest.clone() };
        let mirror = SyncOptions { key: "id".into(), mirror: true };
        let dry_run = preview(store.clone(), &keyed, RecordFormat::Csv, "id\nb\n".as_bytes(), Some(&mirror), 10).await.unwrap();
        assert!(dry_run.requests.contains(&("DELETE", format!("{}?key=a", dest.url))), "{name}: {:?}", dry_run.requests);
        assert!(store.delete_destination(acct, dest.id).await.unwrap());
        assert!(store.synced_keys(dest.id, None, 10).await.unwrap().is_empty(), "{name}: the state goes with its destination");
    }
}

#[tokio::test]
async fn stats_count_and_recovery_requeues_only_failures_in_its_window() {
    for (name, store, _dir) in stores().await {
        let acct = account(store.as_ref()).await;
        let ep = endpoint(store.as_ref(), acct, &["contact.created"]).await;
        let now = now_ms();
        let hour = 3_600_000;
        let aged = |ago: i64| Event { created_at: now - ago, ..event(acct, "contact.created", None) };
        let failed = [aged(3 * hour), aged(2 * hour), aged(hour)];
        store.accept_events(&failed).await.unwrap();
        let mut failed_ids = Vec::new();
        for id in settle_all(store.as_ref(), DeliveryStatus::Failed, 500, "").await {
            failed_ids.push(store.get_delivery(acct, id).await.unwrap().unwrap());
        }
        // Oldest first, like `failed`.
        failed_ids.sort_by_key(|d| d.created_at);
        let failed_ids: Vec<DeliveryId> = failed_ids.iter().map(|d| d.id).collect();
        store.accept_events(&[aged(90 * 60_000)]).await.unwrap();
        settle_all(store.as_ref(), DeliveryStatus::Delivered, 200, "").await;
        store.accept_events(&[aged(1)]).await.unwrap();

        let day = Window { since: now - 24 * hour, until: now + 1 };
        let counts = store.delivery_counts(acct, ep, day).await.unwrap();
        assert_eq!((counts.delivered, counts.failed, counts.pending), (1, 3, 1), "{name}");
        assert_eq!(store.delivery_counts(AccountId::now_v7(), ep, day).await.unwrap(), DeliveryCounts::default(), "{name}: scoped by account");

        let set = FailedSet { target: ep, window: Window { since: now - 150 * 60_000, until: now }, as_of: now_ms() };
        assert_eq!(store.count_failed(&set).await.unwrap(), 2, "{name}: the two failures in the window");
        let first = store.requeue_failed(&set, None, 1, now_ms()).await.unwrap();
        assert_eq!((first.examined, first.changed), (1, 1), "{name}");
        let second = store.requeue_failed(&set, first.last, 1, now_ms()).await.unwrap();
        assert_eq!((second.examined, second.changed), (1, 1), "{name}");
        assert_eq!(store.requeue_failed(&set, second.last, 1, now_ms()).await.unwrap().examined, 0, "{name}: done");
        let claimed = claim_due(store.as_ref(), now_ms(), 10).await;
        let requeued: HashSet<DeliveryId> = claimed.iter().filter(|c| c.manual_retry).map(|c| c.delivery_id).collect();
        assert_eq!(requeued, HashSet::from([failed_ids[1], failed_ids[2]]), "{name}: exactly those, as manual retries");
        let oldest = store.get_delivery(acct, failed_ids[0]).await.unwrap().unwrap();
        assert_eq!(oldest.status, DeliveryStatus::Failed, "{name}: outside the window");
    }
}

/// The overview's timeline: deliveries counted per bucket, target and status, attempts' latency
/// per bucket and target; and the log's cursor and filters, alike on both backends.
#[tokio::test]
async fn timelines_bucket_deliveries_and_latency_and_the_log_pages_by_cursor() {
    for (name, store, _dir) in stores().await {
        let acct = account(store.as_ref()).await;
        let (fast, slow) = (endpoint(store.as_ref(), acct, &["contact.created"]).await, endpoint(store.as_ref(), acct, &["contact.created"]).await);
        let now = now_ms();
        let minute = 60_000;
        let aged = |ago: i64| Event { created_at: now - ago, ..event(acct, "contact.created", None) };
        store.accept_events(&[aged(90 * minute), aged(89 * minute), aged(88 * minute)]).await.unwrap();
        let claimed = claim_due(store.as_ref(), now, 100).await;
        let results: Vec<AttemptResult> = claimed
            .iter()
            .map(|c| {
                let (status, code, ms) = if c.target.id == slow { (DeliveryStatus::Failed, 500, 30) } else { (DeliveryStatus::Delivered, 200, 10) };
                let mut r = result_of(c, status, code, now - minute, now);
                r.attempt.duration_ms = ms;
                r
            })
            .collect();
        store.record_attempts(&results).await.unwrap();
        store.accept_events(&[aged(10 * minute)]).await.unwrap();

        let window = Window { since: now - 120 * minute, until: now + 1 };
        let (mut counts, mut latencies) = store.delivery_timeline(acct, None, window, 30 * minute).await.unwrap();
        counts.sort_by_key(|r| (r.bucket, r.target.id, r.status.as_str()));
        let row = |bucket, target, status, count| CountRow { bucket, target: TargetRef { kind: TargetKind::Webhook, id: target }, status, count };
        let mut expected = vec![
            row(1, fast, DeliveryStatus::Delivered, 3),
            row(1, slow, DeliveryStatus::Failed, 3),
            row(3, fast, DeliveryStatus::Pending, 1),
            row(3, slow, DeliveryStatus::Pending, 1),
        ];
        expected.sort_by_key(|r| (r.bucket, r.target.id, r.status.as_str()));
        assert_eq!(counts, expected, "{name}");
        latencies.sort_by_key(|r| r.target != fast);
        let latency = |target, attempts, total_ms, max_ms| LatencyRow { bucket: 3, target, latency: Latency { attempts, total_ms, max_ms } };
        assert_eq!(latencies, [latency(fast, 3, 30, 10), latency(slow, 3, 90, 30)], "{name}: attempts a minute ago");
        let (only_slow, slow_latency) = store.delivery_timeline(acct, Some(&[slow]), window, 30 * minute).await.unwrap();
        assert!(only_slow.iter().all(|r| r.target.id == slow) && only_slow.len() == 2, "{name}");
        assert_eq!(slow_latency.len(), 1, "{name}");
        let (none, _) = store.delivery_timeline(AccountId::now_v7(), None, window, 30 * minute).await.unwrap();
        assert!(none.is_empty(), "{name}: scoped by account");

        let page = |after, limit| DeliveryFilter { after, limit, ..Default::default() };
        let all = store.list_deliveries(acct, &page(None, 100)).await.unwrap();
        let first = store.list_deliveries(acct, &page(None, 3)).await.unwrap();
        let last = first.last().map(|d| LogPosition { created_at: d.created_at, id: d.id });
        let rest = store.list_deliveries(acct, &page(last, 100)).await.unwrap();
        let paged: Vec<DeliveryId> = first.iter().chain(&rest).map(|d| d.id).collect();
        assert_eq!(paged, all.iter().map(|d| d.id).collect::<Vec<_>>(), "{name}: pages join up exactly");
        assert_eq!(all.len(), 8, "{name}");
        let log = store.as_ref();
        let only = |f: DeliveryFilter| async move { log.list_deliveries(acct, &DeliveryFilter { limit: 100, ..f }).await.unwrap().len() };
        assert_eq!(only(DeliveryFilter { event_type: Some("contact.created".into()), ..Default::default() }).await, 8, "{name}");
        assert_eq!(only(DeliveryFilter { event_type: Some("contact.updated".into()), ..Default::default() }).await, 0, "{name}");
        assert_eq!(only(DeliveryFilter { target_kind: Some(TargetKind::Webhook), ..Default::default() }).await, 8, "{name}");
        assert_eq!(only(DeliveryFilter { target_kind: Some(TargetKind::Mailer), ..Default::default() }).await, 0, "{name}");
        assert_eq!(only(DeliveryFilter { within: Some(vec![fast]), ..Default::default() }).await, 4, "{name}: within one target");
        assert_eq!(only(DeliveryFilter { within: Some(vec![fast, slow]), ..Default::default() }).await, 8, "{name}");
        assert_eq!(only(DeliveryFilter { within: Some(Vec::new()), ..Default::default() }).await, 0, "{name}: within none");
    }
}

#[tokio::test]
async fn accounts_tasks_and_secret_hygiene() {
    for (name, store, _dir) in stores().await {
        let acct = account(store.as_ref()).await;
        assert_eq!(store.get_account(acct).await.unwrap().unwrap().retention_days, None, "{name}");
        assert!(store.set_account_retention(acct, Some(7)).await.unwrap());
        assert!(store.list_accounts().await.unwrap().iter().any(|a| a.id == acct && a.retention_days == Some(7)), "{name}");
        assert!(!store.set_account_retention(AccountId::now_v7(), None).await.unwrap());

        let ep = endpoint(store.as_ref(), acct, &["contact.created"]).await;
        assert_eq!(store.find_target(acct, ep).await.unwrap(), Some(TargetRef { kind: TargetKind::Webhook, id: ep }), "{name}");
        let mut confined = store.get_endpoint(acct, ep).await.unwrap().unwrap();
        confined.workspaces = WorkspaceScope::Only(vec![Uuid::now_v7()]);
        assert!(store.update_endpoint(&confined).await.unwrap());
        assert_eq!(store.get_endpoint(acct, ep).await.unwrap().unwrap().workspaces, confined.workspaces, "{name}: an endpoint keeps its workspaces");
        assert_eq!(store.target_scopes(acct).await.unwrap(), [(ep, confined.workspaces.clone())], "{name}");
        assert!(store.target_scopes(AccountId::now_v7()).await.unwrap().is_empty(), "{name}: scoped by account");
        assert_eq!(store.find_target(AccountId::now_v7(), ep).await.unwrap(), None, "{name}");

        let now = now_ms();
        let mut task = Task {
            id: Uuid::now_v7(),
            account_id: acct,
            kind: switchyard::domain::task::TaskKind::Recover,
            status: switchyard::domain::task::TaskStatus::Running,
            target_id: Some(ep),
            total: 3,
            done: 0,
            skipped: 0,
            error: None,
            created_at: now,
            updated_at: now,
            finished_at: None,
        };
        store.insert_task(&task).await.unwrap();
        task.done = 2;
        store.update_task(&task).await.unwrap();
        assert_eq!(store.get_task(acct, task.id).await.unwrap(), Some(task.clone()), "{name}");
        assert_eq!(store.get_task(AccountId::now_v7(), task.id).await.unwrap(), None, "{name}: scoped by account");
        assert_eq!(store.fail_stale_tasks(now - 1, now).await.unwrap(), 0, "{name}: it moved recently");
        assert_eq!(store.fail_stale_tasks(now + 1, now + 2).await.unwrap(), 1, "{name}");
        let stale = store.get_task(acct, task.id).await.unwrap().unwrap();
        assert_eq!((stale.status.as_str(), stale.finished_at), ("failed", Some(now + 2)), "{name}");

        // Thirteen rotations: the current secret and the ten newest old ones remain.
        for n in 0..13 {
            let at = now + n;
            let secret = StoredSecret { id: Uuid::now_v7(), ciphertext: vec![n as u8], created_at: at, expires_at: None };
            assert!(store.rotate_endpoint_secret(acct, ep, &secret, "whsec_x", at + 60_000).await.unwrap());
        }
        let secrets = store.webhook_target(ep, now + 13).await.unwrap().unwrap().secrets;
        assert_eq!(secrets.len(), 11, "{name}: current + 10 old");
        assert_eq!(secrets.iter().map(|s| s.ciphertext[0]).collect::<Vec<_>>(), (2..13).rev().collect::<Vec<u8>>(), "{name}: newest kept");
        assert_eq!(store.delete_expired_secrets(now + 1_000_000, 500).await.unwrap(), 10, "{name}: expired ones go");
        assert_eq!(store.webhook_target(ep, now).await.unwrap().unwrap().secrets.len(), 1, "{name}");
    }
}

#[tokio::test]
async fn failure_streaks_switching_off_and_on() {
    for (name, store, _dir) in stores().await {
        let acct = account(store.as_ref()).await;
        let ep = endpoint(store.as_ref(), acct, &["contact.created"]).await;
        let watcher = endpoint(store.as_ref(), acct, &["endpoint.disabled"]).await;
        store.accept_events(&(0..4).map(|_| event(acct, "contact.created", None)).collect::<Vec<_>>()).await.unwrap();
        let now = now_ms() + 1;
        let claimed = claim(store.as_ref(), ep, Uuid::new_v4(), now, 10, Ordering::Unordered).await;
        assert_eq!(claimed.len(), 4, "{name}");
        let failed = |c: &ClaimedDelivery, at| result_of(c, DeliveryStatus::Pending, 500, at, now + 99_999);

        let cycle = store.record_and_claim(&[failed(&claimed[0], now + 10), failed(&claimed[1], now + 20)], &[]).await.unwrap();
        let health = |streak, since| TargetHealth { target_id: ep, account_id: acct, is_active: true, failure_streak: streak, failing_since: since };
        assert_eq!(cycle.health, [health(2, Some(now + 11))], "{name}: finished at start + 1 ms");
        let cycle = store.record_and_claim(&[failed(&claimed[2], now + 30)], &[]).await.unwrap();
        assert_eq!(cycle.health, [health(3, Some(now + 11))], "{name}: the streak goes on from its first failure");
        // A success on a target its owner does not know to be failing writes nothing...
        let delivered = result_of(&claimed[3], DeliveryStatus::Delivered, 204, now + 40, now + 41);
        assert_eq!(store.record_and_claim(&[delivered], &[]).await.unwrap().health, [], "{name}: nothing to write");
        // ...and a success its owner knows to end a streak ends it.
        store.accept_events(&[event(acct, "contact.created", None)]).await.unwrap();
        let next = claim(store.as_ref(), ep, Uuid::new_v4(), now_ms() + 1, 10, Ordering::Unordered).await;
        let delivered = AttemptResult { target_failing: true, ..result_of(&next[0], DeliveryStatus::Delivered, 204, now + 60, now + 61) };
        assert_eq!(store.record_and_claim(&[delivered], &[]).await.unwrap().health, [health(0, None)], "{name}: a success ends it");

        // Switched off once, with its report fanned out to the subscriber in the same transaction.
        assert!(store.disable_target(ep, "gone", now, &event(acct, "endpoint.disabled", None)).await.unwrap(), "{name}");
        assert!(!store.disable_target(ep, "gone", now, &event(acct, "endpoint.disabled", None)).await.unwrap(), "{name}: already off");
        let to_watcher = DeliveryFilter { target_id: Some(watcher), limit: 10, ..Default::default() };
        assert_eq!(store.list_deliveries(acct, &to_watcher).await.unwrap().len(), 1, "{name}: one report");
        let off = store.target_health(acct, ep).await.unwrap().unwrap();
        assert_eq!((off.is_active, off.disabled_reason.as_deref()), (false, Some("gone")), "{name}");

        // Switching it on clears the reason and the streak.
        let mut endpoint = store.get_endpoint(acct, ep).await.unwrap().unwrap();
        endpoint.is_active = true;
        assert!(store.update_endpoint(&endpoint).await.unwrap(), "{name}");
        assert_eq!(
            store.target_health(acct, ep).await.unwrap(),
            Some(HealthView { is_active: true, failure_streak: 0, failing_since: None, disabled_reason: None }),
            "{name}"
        );
    }
}

#[tokio::test]
async fn suppressions_are_kept_per_account_updated_listed_and_deleted() {
    for (name, store, _dir) in stores().await {
        let (acct, other) = (account(store.as_ref()).await, account(store.as_ref()).await);
        let entry = |address: &str, reason, at| Suppression {
            account_id: acct,
            address: address.into(),
            reason,
            provider: Some(MailerProvider::Sendgrid),
            mailer_id: Some(TargetId::now_v7()),
            detail: Some("550 5.1.1 unknown".into()),
            first_seen: at,
            last_event: at,
        };
        let bounce = entry("jane@example.com", SuppressionReason::HardBounce, 1_000);
        store.suppress(&[bounce.clone(), entry("a%b@example.com", SuppressionReason::Manual, 1_000)]).await.unwrap();
        assert_eq!(store.suppression(acct, "jane@example.com").await.unwrap(), Some(bounce.clone()), "{name}");
        assert_eq!(store.suppression(other, "jane@example.com").await.unwrap(), None, "{name}: per account");
        let complaint = entry("jane@example.com", SuppressionReason::Complaint, 2_000);
        store.suppress(std::slice::from_ref(&complaint)).await.unwrap();
        let updated = store.suppression(acct, "jane@example.com").await.unwrap().unwrap();
        assert_eq!(updated, Suppression { first_seen: 1_000, ..complaint }, "{name}: the last event, the first sighting kept");
        let list = |address_contains: Option<&str>, after: Option<&str>| {
            let filter = SuppressionFilter { address_contains: address_contains.map(Into::into), after: after.map(Into::into), limit: 10 };
            let store = store.clone();
            async move { store.list_suppressions(acct, &filter).await.unwrap().into_iter().map(|s| s.address).collect::<Vec<_>>() }
        };
        assert_eq!(list(None, None).await, ["a%b@example.com", "jane@example.com"], "{name}");
        assert_eq!(list(None, Some("a%b@example.com")).await, ["jane@example.com"], "{name}");
        assert_eq!(list(Some("%"), None).await, ["a%b@example.com"], "{name}: a literal %");
        assert!(!store.delete_suppression(other, "jane@example.com").await.unwrap(), "{name}");
        assert!(store.delete_suppression(acct, "jane@example.com").await.unwrap(), "{name}");
        assert_eq!(store.suppression(acct, "jane@example.com").await.unwrap(), None, "{name}");
    }
}
