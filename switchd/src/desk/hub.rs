//! Who receives which pushed event: every subscribed connection of hotline staff, leaders and
//! administrators, and department handlers only for their own department's tickets. Also where
//! audio to a desk is sent from, since the hub knows every logged-in connection.

use super::{AudioSendError, Connection};
use rexian_shared::audio::AudioFrame;
use rexian_shared::{Event, Role, ServerMsg};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// The departments an event concerns.
#[derive(Debug, Clone, Default)]
pub struct Audience {
    pub departments: Vec<i64>,
}

struct Subscriber {
    user_id: i64,
    role: Role,
    department_id: Option<i64>,
    conn: Weak<Connection>,
}

#[derive(Default)]
pub struct Hub {
    subscribers: Mutex<HashMap<u64, Subscriber>>,
    /// Every logged-in connection and its user, so a deactivated user is logged out everywhere.
    sessions: Mutex<HashMap<u64, (i64, Weak<Connection>)>>,
}

impl Hub {
    pub fn logged_in(&self, conn: &Arc<Connection>, user_id: i64) {
        if let Ok(mut s) = self.sessions.lock() {
            s.insert(conn.id, (user_id, Arc::downgrade(conn)));
        }
    }

    /// Ends the in-memory sessions of `user_id` on every connection but `except`.
    pub fn end_sessions_of(&self, user_id: i64, except: Option<u64>) {
        let Ok(mut sessions) = self.sessions.lock() else { return };
        let ended: Vec<u64> = sessions
            .iter()
            .filter(|(id, (uid, _))| *uid == user_id && Some(**id) != except)
            .map(|(id, _)| *id)
            .collect();
        for id in ended {
            if let Some(conn) = sessions.remove(&id).and_then(|(_, c)| c.upgrade()) {
                if let Ok(mut s) = conn.session.lock() {
                    *s = None;
                }
            }
            if let Ok(mut subs) = self.subscribers.lock() {
                subs.remove(&id);
            }
        }
    }

    pub fn subscribe(&self, conn: &Arc<Connection>, user_id: i64, role: Role, department_id: Option<i64>) {
        if let Ok(mut subs) = self.subscribers.lock() {
            subs.insert(conn.id, Subscriber { user_id, role, department_id, conn: Arc::downgrade(conn) });
        }
    }

    pub fn remove(&self, conn_id: u64) {
        if let Ok(mut subs) = self.subscribers.lock() {
            subs.remove(&conn_id);
        }
        if let Ok(mut s) = self.sessions.lock() {
            s.remove(&conn_id);
        }
    }

    /// The user logged in on connection `conn_id`.
    pub fn user_of(&self, conn_id: u64) -> Option<i64> {
        self.sessions.lock().ok()?.get(&conn_id).map(|(uid, _)| *uid)
    }

    /// The ids of the connections `user_id` is logged in on, lowest (oldest) first.
    pub fn connections_of(&self, user_id: i64) -> Vec<u64> {
        let Ok(sessions) = self.sessions.lock() else { return Vec::new() };
        let mut ids: Vec<u64> = sessions.iter().filter(|(_, (uid, _))| *uid == user_id).map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids
    }

    /// Sends one audio frame as a datagram to connection `conn_id`, which must have a logged-in
    /// session (audio goes to authenticated desks only). Returns at once; like all datagrams
    /// the frame may be lost, and quinn drops the oldest queued one when its buffer is full.
    pub fn send_audio(&self, conn_id: u64, frame: &AudioFrame) -> Result<(), AudioSendError> {
        let conn = self
            .sessions
            .lock()
            .ok()
            .and_then(|s| s.get(&conn_id).and_then(|(_, c)| c.upgrade()))
            .ok_or(AudioSendError::NotLoggedIn(conn_id))?;
        Ok(conn.quic.send_datagram(frame.to_bytes().into())?)
    }

    /// Pushes `event` to every connection `user_id` is logged in on (a call offered to them).
    pub fn send_to_user(&self, user_id: i64, event: &Event) {
        let Ok(sessions) = self.sessions.lock() else { return };
        for (uid, conn) in sessions.values() {
            if let (true, Some(conn)) = (*uid == user_id, conn.upgrade()) {
                let _ = conn.outgoing.send(ServerMsg::Event { event: event.clone() });
            }
        }
    }

    /// Sends `event` to every subscribed connection of a user with one of `roles`.
    pub fn send_to_roles(&self, roles: &[Role], event: &Event) {
        let Ok(subs) = self.subscribers.lock() else { return };
        for sub in subs.values().filter(|s| roles.contains(&s.role)) {
            if let Some(conn) = sub.conn.upgrade() {
                let _ = conn.outgoing.send(ServerMsg::Event { event: event.clone() });
            }
        }
    }

    pub fn publish(&self, event: Event, audience: &Audience) {
        let Ok(subs) = self.subscribers.lock() else { return };
        for sub in subs.values() {
            let concerned = sub.role != Role::Handler
                || sub.department_id.is_some_and(|d| audience.departments.contains(&d));
            if let (true, Some(conn)) = (concerned, sub.conn.upgrade()) {
                let _ = conn.outgoing.send(ServerMsg::Event { event: event.clone() });
            }
        }
    }

    /// Sends `event` to the subscribed connections of `users` and of the handlers of
    /// `audience`'s departments only (a reminder: whoever set it and the departments handling).
    pub fn publish_to_concerned(&self, event: Event, audience: &Audience, users: &[i64]) {
        let Ok(subs) = self.subscribers.lock() else { return };
        for sub in subs.values() {
            let concerned = users.contains(&sub.user_id)
                || (sub.role == Role::Handler && sub.department_id.is_some_and(|d| audience.departments.contains(&d)));
            if let (true, Some(conn)) = (concerned, sub.conn.upgrade()) {
                let _ = conn.outgoing.send(ServerMsg::Event { event: event.clone() });
            }
        }
    }
}
