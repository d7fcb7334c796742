//! Identities: accounts, guests, sessions, profiles and avatars.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use super::error::{Error, OrNotFound, Result};
use super::{Chat, avatar, validate};
use crate::config::Registration;
use crate::model::User;
use crate::store::{NewUser, ProfilePatch, Role, StoreError, UserKind, UserRecord};
use crate::util::{hash_token, new_id, new_token, now_ms};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// Guests last until logout or 7 days without use.
pub const GUEST_SESSION_MS: i64 = 7 * DAY_MS;
pub const ACCOUNT_SESSION_MS: i64 = 30 * DAY_MS;
/// Sliding expiry is written at most this often per session.
const TOUCH_EVERY_MS: i64 = 60 * 1000;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: UserRecord,
    pub token_hash: String,
}

/// A hash to verify against when the account does not exist, so that a login for an
/// unknown user costs the same time as one with a wrong password.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password_now("not-a-real-password").unwrap_or_default());

fn hash_password_now(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))
}

/// Argon2id with a random salt, off the async threads.
pub async fn hash_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_password_now(&password))
        .await
        .map_err(|e| Error::Internal(e.into()))?
        .map_err(Error::Internal)
}

pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

impl Chat {
    async fn start_session(&self, user: &UserRecord) -> Result<String> {
        let token = new_token();
        let now = now_ms();
        let ttl = if user.kind == UserKind::Guest {
            GUEST_SESSION_MS
        } else {
            ACCOUNT_SESSION_MS
        };
        self.store
            .create_session(&hash_token(&token), &user.id, now, now + ttl)
            .await?;
        Ok(token)
    }

    /// Every new account and guest is a member of the default room.
    async fn join_default_room(&self, user: &UserRecord) -> Result<()> {
        if let Some(room) = self.store.default_room().await? {
            match self
                .store
                .add_member(&room.id, &user.id, Role::Member, now_ms())
                .await
            {
                Ok(_) | Err(StoreError::RoomFull) => {}
                Err(e) => return Err(e.into()),
            }
            self.after_join(&room.id, user).await?;
        }
        Ok(())
    }

    pub async fn register(
        &self,
        ip: &str,
        username: &str,
        password: &str,
        display_name: Option<&str>,
    ) -> Result<(User, String)> {
        if self.settings.registration == Registration::Closed {
            return Err(Error::forbidden("registration is closed on this server"));
        }
        let username = validate::username("username", username)?;
        let password = validate::password(password)?;
        let display_name = display_name
            .map(validate::display_name)
            .transpose()?
            .flatten();
        self.limits.registration(ip)?;
        let hash = hash_password(password).await?;
        let user = self
            .store
            .create_account(NewUser {
                id: new_id(),
                kind: UserKind::User,
                username,
                display_name,
                password_hash: Some(hash),
                created_at: now_ms(),
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => Error::Conflict("username is taken".into()),
                other => other.into(),
            })?;
        self.join_default_room(&user).await?;
        let token = self.start_session(&user).await?;
        tracing::info!(user = %user.id, "account registered");
        Ok((User::from_record(&user), token))
    }

    pub async fn login(&self, ip: &str, username: &str, password: &str) -> Result<(User, String)> {
        let now = now_ms();
        self.limits.login_allowed(username, ip, now)?;
        let user = match self.store.user_by_name(username).await {
            Ok(u) if u.kind != UserKind::Guest => Some(u),
            Ok(_) | Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        let hash = user
            .as_ref()
            .and_then(|u| u.password_hash.clone())
            .unwrap_or_else(|| DUMMY_HASH.clone());
        let ok = verify_password(password.to_string(), hash).await;
        match user {
            Some(user) if ok => {
                let token = self.start_session(&user).await?;
                Ok((User::from_record(&user), token))
            }
            _ => {
                self.limits.login_failed(username, ip, now);
                Err(Error::Unauthorized("invalid username or password".into()))
            }
        }
    }

    pub async fn guest(
        &self,
        ip: &str,
        name: &str,
        avatar: Option<&str>,
    ) -> Result<(User, String)> {
        if self.settings.no_guests {
            return Err(Error::forbidden(
                "guest access is switched off on this server",
            ));
        }
        let name = validate::username("name", name)?;
        // Everything is checked before anything is stored.
        let image = match avatar {
            Some(url) if !url.is_empty() => {
                let bytes = avatar::decode_data_url(url, self.settings.max_avatar_bytes)?;
                Some(self.process_avatar(bytes).await?)
            }
            _ => None,
        };
        self.limits.signup(ip)?;
        let now = now_ms();
        let mut user = self
            .store
            .create_guest(
                NewUser {
                    id: new_id(),
                    kind: UserKind::Guest,
                    username: name,
                    display_name: None,
                    password_hash: None,
                    created_at: now,
                },
                now,
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => Error::Conflict("this name is taken".into()),
                other => other.into(),
            })?;
        if let Some(p) = image {
            user = self
                .store
                .set_avatar(
                    &user.id,
                    Some((p.hash, p.content_type.to_string(), p.bytes)),
                )
                .await?;
        }
        self.join_default_room(&user).await?;
        let token = self.start_session(&user).await?;
        Ok((User::from_record(&user), token))
    }

    pub async fn logout(&self, session: &Session) -> Result<()> {
        self.store.delete_session(&session.token_hash).await?;
        if session.user.kind == UserKind::Guest {
            self.store.release_guest_name(&session.user.id).await?;
        }
        self.hub.close_session(&session.token_hash);
        Ok(())
    }

    /// Resolves a session token. Sliding expiry: using a session extends it.
    pub async fn authenticate(&self, token: &str) -> Result<Session> {
        let token_hash = hash_token(token);
        let now = now_ms();
        let s = match self.store.session(&token_hash, now).await {
            Ok(s) => s,
            Err(StoreError::NotFound) => {
                return Err(Error::Unauthorized(
                    "not signed in or session expired".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        if now - s.last_used_at > TOUCH_EVERY_MS {
            let ttl = if s.user.kind == UserKind::Guest {
                GUEST_SESSION_MS
            } else {
                ACCOUNT_SESSION_MS
            };
            self.store
                .touch_session(&token_hash, now, now + ttl)
                .await?;
        }
        Ok(Session {
            user: s.user,
            token_hash,
        })
    }

    pub fn me(&self, user: &UserRecord) -> User {
        self.user_with_presence(user)
    }

    pub async fn user(&self, id: &str) -> Result<User> {
        let u = self.store.user(id).await.or_not_found("user")?;
        Ok(self.user_with_presence(&u))
    }

    pub async fn search_users(&self, q: &str, limit: Option<i64>) -> Result<Vec<User>> {
        let q = validate::text("q", q.trim(), 64, false)?;
        let limit = limit.unwrap_or(20).clamp(1, 50);
        let users = self.store.search_users(&q, limit).await?;
        Ok(users.iter().map(|u| self.user_with_presence(u)).collect())
    }

    pub async fn update_profile(
        &self,
        user: &UserRecord,
        display_name: Option<&str>,
        bio: Option<&str>,
        status_text: Option<&str>,
    ) -> Result<User> {
        let patch = ProfilePatch {
            display_name: display_name.map(validate::display_name).transpose()?,
            bio: bio
                .map(|b| validate::text("bio", b, 500, true))
                .transpose()?,
            status_text: status_text
                .map(|s| validate::text("status_text", s.trim(), 100, false))
                .transpose()?,
        };
        self.limits.write(&user.id)?;
        let updated = self.store.update_profile(&user.id, patch).await?;
        self.broadcast_user(&updated).await?;
        Ok(self.user_with_presence(&updated))
    }

    async fn process_avatar(&self, bytes: Vec<u8>) -> Result<avatar::Processed> {
        let max = self.settings.max_avatar_bytes;
        tokio::task::spawn_blocking(move || avatar::process(&bytes, max))
            .await
            .map_err(|e| Error::Internal(e.into()))?
    }

    pub async fn set_avatar(&self, user: &UserRecord, bytes: Vec<u8>) -> Result<User> {
        self.limits.write(&user.id)?;
        let p = self.process_avatar(bytes).await?;
        let updated = self
            .store
            .set_avatar(
                &user.id,
                Some((p.hash, p.content_type.to_string(), p.bytes)),
            )
            .await?;
        self.broadcast_user(&updated).await?;
        Ok(self.user_with_presence(&updated))
    }

    pub async fn reset_avatar(&self, user: &UserRecord) -> Result<User> {
        self.limits.write(&user.id)?;
        let updated = self.store.set_avatar(&user.id, None).await?;
        self.broadcast_user(&updated).await?;
        Ok(self.user_with_presence(&updated))
    }

    /// The avatar image of a user: (content type, bytes, version tag).
    pub async fn avatar_image(&self, user_id: &str) -> Result<(String, Vec<u8>, String)> {
        let u = self.store.user(user_id).await.or_not_found("user")?;
        match &u.avatar_hash {
            Some(hash) => {
                let (ct, bytes) = self.store.avatar(hash).await.or_not_found("avatar")?;
                Ok((ct, bytes, hash.clone()))
            }
            None => Ok((
                "image/svg+xml".into(),
                avatar::default_svg(&u.username).into_bytes(),
                avatar::default_version(&u.username),
            )),
        }
    }

    // --- administration (CLI) ---

    pub async fn admin_create_user(
        &self,
        username: &str,
        password: &str,
        admin: bool,
    ) -> Result<User> {
        let username = validate::username("username", username)?;
        let hash = hash_password(validate::password(password)?).await?;
        let user = self
            .store
            .create_account(NewUser {
                id: new_id(),
                kind: UserKind::User,
                username,
                display_name: None,
                password_hash: Some(hash),
                created_at: now_ms(),
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => Error::Conflict("username is taken".into()),
                other => other.into(),
            })?;
        if admin {
            self.store.set_admin(&user.id, true).await?;
        }
        self.join_default_room(&user).await?;
        Ok(User::from_record(&self.store.user(&user.id).await?))
    }

    pub async fn admin_set_admin(&self, username: &str, admin: bool) -> Result<()> {
        let u = self
            .store
            .user_by_name(username)
            .await
            .or_not_found("user")?;
        self.store.set_admin(&u.id, admin).await?;
        Ok(())
    }

    pub async fn admin_reset_password(&self, username: &str, password: &str) -> Result<()> {
        let u = self
            .store
            .user_by_name(username)
            .await
            .or_not_found("user")?;
        let hash = hash_password(validate::password(password)?).await?;
        self.store.set_password(&u.id, &hash).await?;
        Ok(())
    }
}
