//! `switchyard token …` and `switchyard account …`: the admin API's verbs, working on the
//! database (for the server's own machine, and for setting up the first account).

use anyhow::{Context, bail};

use crate::config::{AccountCommand, TokenCommand};
use crate::crypto::api_token;
use crate::domain::access::check_external_id;
use crate::domain::account::{Account, AccountCreated};
use crate::domain::names::check_name;
use crate::domain::time::{Millis, now_ms, rfc3339};
use crate::janitor;
use crate::server;
use crate::store::Store;

pub async fn token(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { account, name, scope, expires_in, database } => {
            let account = account.trim();
            if account.is_empty() {
                bail!("--account must not be empty");
            }
            crate::domain::access::check_token_name(&name).map_err(anyhow::Error::msg)?;
            let (store, _) = server::open_store(&database).await?;
            let now = now_ms();
            let account = store.account_named(account, now).await?;
            let expires_at = expires_in.map(|d| now + d.as_millis() as Millis);
            let (token, record) = api_token::issue(account.id, name.trim(), scope, now, expires_at);
            store.insert_token(&record).await?;
            eprintln!(
                "Created a {} token '{}' for account '{}' ({}). It is shown only this once:",
                scope.as_str(),
                record.name,
                account.name,
                account.id
            );
            println!("{token}");
        }
        TokenCommand::List { account, database } => {
            let (store, _) = server::open_store(&database).await?;
            let account = named(store.as_ref(), &account).await?;
            for t in store.list_tokens(account.id).await? {
                let expires = t.expires_at.map_or("never".into(), rfc3339);
                let used = t.last_used_at.map_or("never".into(), rfc3339);
                println!(
                    "{}  {:<12} {:<12} {}  created {}  expires {expires}  last used {used}",
                    t.id,
                    t.scope.as_str(),
                    t.name,
                    t.prefix,
                    rfc3339(t.created_at)
                );
            }
        }
        TokenCommand::Revoke { account, id, database } => {
            let (store, _) = server::open_store(&database).await?;
            let account = named(store.as_ref(), &account).await?;
            let id = uuid::Uuid::try_parse(&id).context("the token id must be a UUID (see `token list`)")?;
            if !store.revoke_token(account.id, id).await? {
                bail!("account '{}' has no token {id}", account.name);
            }
            println!("revoked {id}");
        }
    }
    Ok(())
}

pub async fn account(command: AccountCommand) -> anyhow::Result<()> {
    match command {
        AccountCommand::Create { name, external_id, database } => {
            let name = check_name("name", &name).map_err(anyhow::Error::msg)?;
            if name.is_empty() {
                bail!("the name must not be empty");
            }
            if let Some(id) = &external_id {
                check_external_id(id).map_err(anyhow::Error::msg)?;
            }
            let (store, _) = server::open_store(&database).await?;
            match store.create_account(&Account::new(&name, external_id.as_deref(), now_ms())).await? {
                AccountCreated::Created(a) => println!("created account '{}' ({})", a.name, a.id),
                AccountCreated::Existing(a) => println!("account '{}' ({}) already has that external id", a.name, a.id),
                AccountCreated::NameTaken => bail!("an account named '{name}' exists"),
            }
        }
        AccountCommand::List { database } => {
            let (store, _) = server::open_store(&database).await?;
            for a in store.list_accounts().await? {
                let status = if a.deleting_since.is_some() { "deleting" } else { "active" };
                println!("{}  {status:<8}  {}  external id {}", a.id, a.name, a.external_id.as_deref().unwrap_or("-"));
            }
        }
        AccountCommand::Delete { name, database } => {
            let (store, _) = server::open_store(&database).await?;
            let account = named(store.as_ref(), &name).await?;
            store.start_account_deletion(account.id, now_ms()).await?;
            let rows = janitor::purge_deleted_accounts(store.as_ref()).await?;
            println!("deleted account '{}' ({}) and {rows} rows of its data", account.name, account.id);
        }
    }
    Ok(())
}

async fn named(store: &dyn Store, name: &str) -> anyhow::Result<Account> {
    store.account_by_name(name.trim()).await?.with_context(|| format!("there is no account named '{}'", name.trim()))
}
