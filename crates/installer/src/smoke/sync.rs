//! The part of a `/sync` answer the smoke test reads: new messages and pending invites.

use serde_json::Value;

/// A text message seen in a joined room's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub room_id: String,
    pub event_id: String,
    pub sender: String,
    pub body: String,
}

/// One `/sync` answer.
#[derive(Debug, Clone, Default)]
pub struct SyncBatch {
    /// The token to sync from next.
    pub next_batch: String,
    /// `m.room.message` events of joined rooms, in timeline order.
    pub messages: Vec<Message>,
    /// Rooms the user is invited to.
    pub invites: Vec<String>,
}

impl SyncBatch {
    /// Reads a `/sync` answer; the error says what is missing.
    pub fn parse(value: &Value) -> Result<Self, String> {
        let next_batch = value
            .get("next_batch")
            .and_then(Value::as_str)
            .ok_or("no next_batch")?
            .to_string();
        let rooms = value.get("rooms");
        let section = |name: &str| {
            rooms
                .and_then(|r| r.get(name))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let mut messages = Vec::new();
        for (room_id, room) in section("join") {
            let events = room
                .pointer("/timeline/events")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for event in events {
                if event.get("type").and_then(Value::as_str) != Some("m.room.message") {
                    continue;
                }
                let text = |pointer: &str| event.pointer(pointer).and_then(Value::as_str);
                if let (Some(event_id), Some(sender), Some(body)) =
                    (text("/event_id"), text("/sender"), text("/content/body"))
                {
                    messages.push(Message {
                        room_id: room_id.clone(),
                        event_id: event_id.to_string(),
                        sender: sender.to_string(),
                        body: body.to_string(),
                    });
                }
            }
        }
        Ok(SyncBatch {
            next_batch,
            messages,
            invites: section("invite").keys().cloned().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_messages_in_order_and_invites() {
        let value = json!({
            "next_batch": "s2",
            "rooms": {
                "join": { "!r:x": { "timeline": { "events": [
                    { "type": "m.room.member", "event_id": "$m", "sender": "@a:x", "content": {} },
                    { "type": "m.room.message", "event_id": "$1", "sender": "@a:x",
                      "content": { "body": "one" } },
                    { "type": "m.room.message", "event_id": "$2", "sender": "@a:x",
                      "content": { "body": "two" } },
                ] } } },
                "invite": { "!i:x": {} },
            }
        });
        let batch = SyncBatch::parse(&value).unwrap();
        assert_eq!(batch.next_batch, "s2");
        let bodies: Vec<_> = batch.messages.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies, ["one", "two"]);
        assert_eq!(batch.invites, ["!i:x"]);
    }

    #[test]
    fn a_batch_without_token_is_an_error() {
        assert!(SyncBatch::parse(&json!({})).is_err());
    }
}
