//! Session tracking towards the client: what MariaDB's trackers would report in the OKs the proxy
//! builds itself (SET, USE), by the client's own `session_track_*` settings — its backends' trackers
//! are the proxy's and are never changed by a client.

use bytes::{BufMut, BytesMut};

use crate::proto::packets;
use crate::sql::session::{set_key, set_value, SetItem};

/// The client's trackers (MariaDB's defaults until it sets them).
#[derive(Debug, Clone)]
pub struct ClientTracking {
    /// `session_track_system_variables`: the variables reported when set, `*` for all.
    variables: Vec<String>,
    schema: bool,
}

impl Default for ClientTracking {
    fn default() -> Self {
        ClientTracking {
            variables: [
                "autocommit",
                "character_set_client",
                "character_set_connection",
                "character_set_results",
                "time_zone",
            ]
            .map(String::from)
            .to_vec(),
            schema: true,
        }
    }
}

fn entry(out: &mut BytesMut, kind: u8, parts: &[&str]) {
    let mut data = BytesMut::new();
    for p in parts {
        packets::put_lenenc_str(&mut data, p.as_bytes());
    }
    out.put_u8(kind);
    packets::put_lenenc_str(out, &data);
}

impl ClientTracking {
    /// A `SET session_track_…` of the client.
    pub fn set(&mut self, item: &str) {
        let key = set_key(item).unwrap_or_default();
        let value = set_value(item);
        match key.as_str() {
            "session_track_system_variables" => {
                self.variables =
                    value.split(',').map(|v| v.trim().to_ascii_lowercase()).filter(|v| !v.is_empty()).collect()
            }
            "session_track_schema" => self.schema = matches!(value.to_ascii_uppercase().as_str(), "ON" | "1" | "TRUE"),
            _ => {}
        }
    }

    fn tracks(&self, var: &str) -> bool {
        self.variables.iter().any(|v| v == "*" || v == var)
    }

    /// The entries a SET's OK carries (empty: none).
    pub fn report(&self, items: &[SetItem]) -> Vec<u8> {
        let mut out = BytesMut::new();
        let var = |out: &mut BytesMut, name: &str, value: &str| {
            if self.tracks(name) {
                entry(out, 0, &[name, value]);
            }
        };
        for it in items {
            match it {
                SetItem::Names(cs) => {
                    let name = cs.split_whitespace().next().unwrap_or("").trim_matches(|c| c == '\'' || c == '"');
                    for v in ["character_set_client", "character_set_connection", "character_set_results"] {
                        var(&mut out, v, name);
                    }
                }
                SetItem::Autocommit(on) => var(&mut out, "autocommit", if *on { "ON" } else { "OFF" }),
                SetItem::Other(s) => {
                    if let Some(k) = set_key(s).filter(|k| !k.starts_with('@') && !k.starts_with("session_track_")) {
                        var(&mut out, &k, &set_value(s));
                    }
                }
                _ => {}
            }
        }
        out.to_vec()
    }

    /// The entry a USE's OK carries.
    pub fn schema(&self, name: &str) -> Vec<u8> {
        let mut out = BytesMut::new();
        if self.schema {
            entry(&mut out, 1, &[name]);
        }
        out.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_what_mariadb_tracks_by_default() {
        let t = ClientTracking::default();
        let r =
            t.report(&[SetItem::Other("SET character_set_client=koi8r".into()), SetItem::Other("SET @x = 1".into())]);
        assert_eq!(r, b"\x00\x1b\x14character_set_client\x05koi8r".to_vec());
        assert!(t.report(&[SetItem::Other("SET sql_mode = 'ANSI'".into())]).is_empty());
        let mut all = ClientTracking::default();
        all.set("SET session_track_system_variables = '*'");
        assert!(!all.report(&[SetItem::Other("SET sql_mode = 'ANSI'".into())]).is_empty());
        assert_eq!(t.schema("demo"), b"\x01\x05\x04demo".to_vec());
    }
}
