//! Users, passwords (Argon2id), sessions and account locking.

use crate::cases::Actor;
use crate::store::{NewUserRecord, Store, StoreError, UserRecord};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{Duration, NaiveDateTime};
use rexian_shared::*;
use serde::{Deserialize, Serialize};

/// The `[auth]` section of the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// How long a session token stays valid.
    pub session_hours: u32,
    /// Failed logins in a row that lock an account.
    pub max_failed_logins: u32,
    /// How long a locked account stays locked.
    pub lock_minutes: u32,
    /// Shortest password accepted.
    pub min_password_len: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { session_hours: 12, max_failed_logins: 5, lock_minutes: 15, min_password_len: 8 }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Unknown user, wrong password or inactive account (never told apart, on purpose).
    #[error("用户名或密码错误 / wrong user name or password")]
    BadCredentials,
    /// Locked after too many failures.
    #[error("账户已锁定至{0} / account locked until {0}")]
    Locked(NaiveDateTime),
    /// Token unknown, logged out or expired.
    #[error("会话已过期，请重新登录 / session expired")]
    SessionExpired,
    /// The new password is too short.
    #[error("密码至少需要{0}个字符 / password needs at least {0} characters")]
    WeakPassword(usize),
    /// The user name or agent number exists already.
    #[error("{0}")]
    Conflict(String),
    /// A field of the request is invalid.
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    /// No such user.
    #[error("用户{0}不存在 / no user {0}")]
    NoSuchUser(String),
    /// Hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt).map_err(|_| AuthError::Hash("no randomness".into()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A fresh random session token (given to the client; only its hash is stored).
pub fn new_token() -> Result<String, AuthError> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).map_err(|_| AuthError::Hash("no randomness".into()))?;
    Ok(hex::encode(bytes))
}

pub fn token_hash(token: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref())
}

/// Hashing is slow on purpose; keep it off the async threads.
async fn hash_blocking(password: String) -> Result<String, AuthError> {
    tokio::task::spawn_blocking(move || hash_password(&password)).await.map_err(|e| AuthError::Hash(e.to_string()))?
}

async fn verify_blocking(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || verify_password(&hash, &password)).await.unwrap_or(false)
}

pub fn actor_of(user: &UserInfo) -> Actor {
    Actor { user_id: user.id, username: user.username.to_string(), role: user.role, department_id: user.department_id }
}

#[derive(Clone)]
pub struct Auth {
    store: Store,
    config: AuthConfig,
    /// Verified against when the user does not exist, so timing does not reveal user names.
    dummy_hash: String,
}

impl Auth {
    pub fn new(store: Store, config: AuthConfig) -> Result<Self, AuthError> {
        Ok(Self { store, config, dummy_hash: hash_password("rexian-dummy-password")? })
    }

    pub async fn login(&self, username: &str, password: &str, now: NaiveDateTime) -> Result<Session, AuthError> {
        let name = username.to_owned();
        let user = self.store.read(move |db| db.user_by_username(&name, now)).await?;
        let Some(user) = user else {
            verify_blocking(self.dummy_hash.clone(), password.to_owned()).await;
            return Err(AuthError::BadCredentials);
        };
        if let Some(until) = user.locked_until.filter(|u| *u > now) {
            return Err(AuthError::Locked(until));
        }
        let ok = verify_blocking(user.password_hash.clone(), password.to_owned()).await;
        if !ok || !user.info.active {
            return Err(self.record_failure(&user, now).await?);
        }
        self.open_session(user.info, now).await
    }

    async fn record_failure(&self, user: &UserRecord, now: NaiveDateTime) -> Result<AuthError, AuthError> {
        let (id, name, max) = (user.info.id, user.info.username.to_string(), self.config.max_failed_logins);
        let until = now + Duration::minutes(self.config.lock_minutes.into());
        let locked = self
            .store
            .write(move |db| {
                let locked = db.record_failed_login(id, max, until)?;
                db.audit(now, &name, if locked { "account_locked" } else { "login_failed" }, "")?;
                Ok::<_, StoreError>(locked)
            })
            .await?;
        Ok(if locked { AuthError::Locked(until) } else { AuthError::BadCredentials })
    }

    async fn open_session(&self, user: UserInfo, now: NaiveDateTime) -> Result<Session, AuthError> {
        let token = new_token()?;
        let expires_at = now + Duration::hours(self.config.session_hours.into());
        let (hash, id, name) = (token_hash(&token), user.id, user.username.to_string());
        self.store
            .write(move |db| {
                db.clear_failed_logins(id)?;
                db.insert_session(&hash, id, now, expires_at)?;
                db.audit(now, &name, "login", "")
            })
            .await?;
        Ok(Session { token, expires_at, user })
    }

    /// Takes up an existing session again (after a reconnect).
    pub async fn resume(&self, token: &str, now: NaiveDateTime) -> Result<Session, AuthError> {
        let hash = token_hash(token);
        let found = self.store.read(move |db| db.session(&hash, now)).await?;
        let (user, expires_at) = found.ok_or(AuthError::SessionExpired)?;
        Ok(Session { token: token.to_owned(), expires_at, user: user.info })
    }

    pub async fn logout(&self, token: &str) -> Result<(), AuthError> {
        let hash = token_hash(token);
        Ok(self.store.write(move |db| db.delete_session(&hash)).await?)
    }

    pub async fn change_password(&self, user_id: i64, old: &str, new: &str, now: NaiveDateTime) -> Result<(), AuthError> {
        let user = self.store.read(move |db| db.user_by_id(user_id)).await?.ok_or(AuthError::SessionExpired)?;
        if !verify_blocking(user.password_hash, old.to_owned()).await {
            return Err(AuthError::BadCredentials);
        }
        self.set_password(user.info.username.as_ref(), new, user.info.username.as_ref(), now).await.map(|_| ())
    }

    /// Sets a password (administrators, the CLI, and password change); ends the user's sessions.
    /// Returns the user's id.
    pub async fn set_password(&self, username: &str, new: &str, by: &str, now: NaiveDateTime) -> Result<i64, AuthError> {
        self.check_strength(new)?;
        let hash = hash_blocking(new.to_owned()).await?;
        let (name, by) = (username.to_owned(), by.to_owned());
        self.store
            .write(move |db| {
                let user = db.user_by_username(&name, now)?.ok_or_else(|| AuthError::NoSuchUser(name.clone()))?;
                db.set_password_hash(user.info.id, &hash)?;
                db.audit(now, &by, "set_password", &name)?;
                Ok(user.info.id)
            })
            .await
    }

    fn check_strength(&self, password: &str) -> Result<(), AuthError> {
        if password.chars().count() < self.config.min_password_len {
            return Err(AuthError::WeakPassword(self.config.min_password_len));
        }
        Ok(())
    }

    pub async fn create_user(&self, new: NewUser, by: &str, now: NaiveDateTime) -> Result<UserInfo, AuthError> {
        let username = Username::parse(&new.username)?;
        let agent_no = new.agent_no.as_deref().filter(|a| !a.is_empty()).map(AgentNo::parse).transpose()?;
        if new.display_name.trim().is_empty() || new.display_name.chars().count() > 50 {
            return Err(InvalidValue { field: "display_name", field_zh: "姓名", reason: "应为1至50个字 / 1 to 50 characters".into() }.into());
        }
        if new.role == Role::Handler && new.department_id.is_none() {
            return Err(InvalidValue { field: "department_id", field_zh: "所属部门", reason: "承办人必须属于一个部门 / a handler needs a department".into() }.into());
        }
        if new.role == Role::Agent && agent_no.is_none() {
            return Err(InvalidValue { field: "agent_no", field_zh: "工号", reason: "话务员必须有工号 / an agent needs an agent number".into() }.into());
        }
        self.check_strength(&new.password)?;
        let password_hash = hash_blocking(new.password.clone()).await?;
        let by = by.to_owned();
        let record = NewUserRecord {
            username,
            display_name: new.display_name.trim().to_owned(),
            role: new.role,
            agent_no,
            department_id: new.department_id,
            password_hash,
            created_at: now,
        };
        self.store
            .write(move |db| {
                if db.username_taken(record.username.as_ref())? {
                    return Err(AuthError::Conflict(format!("用户名{}已存在 / user name taken", record.username)));
                }
                if let Some(a) = &record.agent_no {
                    if db.agent_no_taken(a.as_ref())? {
                        return Err(AuthError::Conflict(format!("工号{a}已被使用 / agent number taken")));
                    }
                }
                if let Some(d) = record.department_id {
                    if !db.department_exists(d)? {
                        return Err(InvalidValue { field: "department_id", field_zh: "所属部门", reason: format!("部门{d}不存在") }.into());
                    }
                }
                let user = db.insert_user(&record)?;
                db.audit(now, &by, "create_user", &format!("{} {}", user.username, user.role))?;
                Ok(user)
            })
            .await
    }

    /// Returns the user's id.
    pub async fn set_active(&self, username: &str, active: bool, by: &str, now: NaiveDateTime) -> Result<i64, AuthError> {
        let (name, by) = (username.to_owned(), by.to_owned());
        self.store
            .write(move |db| {
                let user = db.user_by_username(&name, now)?.ok_or_else(|| AuthError::NoSuchUser(name.clone()))?;
                db.set_user_active(user.info.id, active)?;
                db.audit(now, &by, if active { "activate_user" } else { "deactivate_user" }, &name)?;
                Ok(user.info.id)
            })
            .await
    }

    pub async fn unlock(&self, username: &str, by: &str, now: NaiveDateTime) -> Result<(), AuthError> {
        let (name, by) = (username.to_owned(), by.to_owned());
        self.store
            .write(move |db| {
                let user = db.user_by_username(&name, now)?.ok_or_else(|| AuthError::NoSuchUser(name.clone()))?;
                db.clear_failed_logins(user.info.id)?;
                db.audit(now, &by, "unlock_user", &name)?;
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_per_salt() {
        let a = hash_password("correct horse").expect("hash");
        let b = hash_password("correct horse").expect("hash");
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password(&a, "correct horse"));
        assert!(!verify_password(&a, "wrong horse"));
        assert!(!verify_password("not a hash", "x"));
    }
}
