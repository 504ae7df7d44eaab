//! Decoding the parameters of a client's COM_STMT_EXECUTE (binary protocol values, NULL bitmap, long
//! data) into the values routing binds to the statement's placeholders.

use std::collections::BTreeMap;

use crate::route::Param;

fn take<'a>(p: &'a [u8], pos: &mut usize, n: usize) -> Option<&'a [u8]> {
    let s = p.get(*pos..pos.checked_add(n)?)?;
    *pos += n;
    Some(s)
}

fn date_time(ty: u8, b: &[u8]) -> String {
    let y = b.get(0..2).map(|x| u16::from_le_bytes([x[0], x[1]])).unwrap_or(0);
    let (mo, d) = (b.get(2).copied().unwrap_or(0), b.get(3).copied().unwrap_or(0));
    if ty == 0x0A || b.len() < 7 {
        if ty == 0x0A {
            return format!("{y:04}-{mo:02}-{d:02}");
        }
        return format!("{y:04}-{mo:02}-{d:02} 00:00:00");
    }
    let (h, mi, s) = (b[4], b[5], b[6]);
    match b.get(7..11) {
        Some(u) => {
            let micro = u32::from_le_bytes([u[0], u[1], u[2], u[3]]);
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{micro:06}")
        }
        None => format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"),
    }
}

fn time(b: &[u8]) -> String {
    if b.len() < 8 {
        return "00:00:00".into();
    }
    let neg = b[0] == 1;
    let days = u32::from_le_bytes([b[1], b[2], b[3], b[4]]);
    let h = u64::from(days) * 24 + u64::from(b[5]);
    let base = format!("{}{h:02}:{:02}:{:02}", if neg { "-" } else { "" }, b[6], b[7]);
    match b.get(8..12) {
        Some(u) => format!("{base}.{:06}", u32::from_le_bytes([u[0], u[1], u[2], u[3]])),
        None => base,
    }
}

/// The parameters of an execute packet. `types` are the types remembered from an earlier execute
/// (used when this one does not send them). `None` when the packet is malformed.
pub fn decode(pkt: &[u8], count: u16, types: Option<&[u8]>, long_data: &BTreeMap<u16, Vec<u8>>) -> Option<Vec<Param>> {
    let n = count as usize;
    if n == 0 {
        return Some(Vec::new());
    }
    let mut pos = 10;
    let bitmap = take(pkt, &mut pos, n.div_ceil(8))?.to_vec();
    let bound = *pkt.get(pos)?;
    pos += 1;
    let types: Vec<u8> = if bound == 1 { take(pkt, &mut pos, 2 * n)?.to_vec() } else { types?.to_vec() };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        if bitmap[i / 8] & (1 << (i % 8)) != 0 {
            out.push(Param::Null);
            continue;
        }
        if let Some(d) = long_data.get(&(i as u16)) {
            out.push(Param::Bytes(d.clone()));
            continue;
        }
        let (ty, unsigned) = (*types.get(2 * i)?, types.get(2 * i + 1)? & 0x80 != 0);
        let p = match ty {
            0x06 => Param::Null,
            0x01 => {
                let b = take(pkt, &mut pos, 1)?[0];
                Param::Number(if unsigned { b.to_string() } else { (b as i8).to_string() })
            }
            0x02 | 0x0D => {
                let b = take(pkt, &mut pos, 2)?;
                let v = u16::from_le_bytes([b[0], b[1]]);
                Param::Number(if unsigned { v.to_string() } else { (v as i16).to_string() })
            }
            0x03 | 0x09 => {
                let b = take(pkt, &mut pos, 4)?;
                let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                Param::Number(if unsigned { v.to_string() } else { (v as i32).to_string() })
            }
            0x08 => {
                let b: [u8; 8] = take(pkt, &mut pos, 8)?.try_into().ok()?;
                let v = u64::from_le_bytes(b);
                Param::Number(if unsigned { v.to_string() } else { (v as i64).to_string() })
            }
            0x04 => {
                let b: [u8; 4] = take(pkt, &mut pos, 4)?.try_into().ok()?;
                Param::Number(f32::from_le_bytes(b).to_string())
            }
            0x05 => {
                let b: [u8; 8] = take(pkt, &mut pos, 8)?.try_into().ok()?;
                Param::Number(f64::from_le_bytes(b).to_string())
            }
            0x07 | 0x0A | 0x0C => {
                let len = *take(pkt, &mut pos, 1)?.first()? as usize;
                Param::Bytes(date_time(ty, take(pkt, &mut pos, len)?).into_bytes())
            }
            0x0B => {
                let len = *take(pkt, &mut pos, 1)?.first()? as usize;
                Param::Bytes(time(take(pkt, &mut pos, len)?).into_bytes())
            }
            _ => {
                let s = crate::proto::packets::read_lenenc_str(pkt, &mut pos)??;
                if ty == 0x00 || ty == 0xF6 {
                    Param::Number(String::from_utf8_lossy(s).into_owned())
                } else {
                    Param::Bytes(s.to_vec())
                }
            }
        };
        out.push(p);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_common_types() {
        // stmt 1, flags 0, iter 1, 4 params: LONGLONG 5, VARCHAR "ab", NULL, DATETIME 2024-01-02 03:04:05
        let mut p = vec![0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0];
        p.push(0b0000_0100); // param 2 is NULL
        p.push(1);
        p.extend_from_slice(&[0x08, 0, 0xFD, 0, 0x06, 0, 0x0C, 0]);
        p.extend_from_slice(&5i64.to_le_bytes());
        p.extend_from_slice(&[2, b'a', b'b']);
        p.extend_from_slice(&[7, 0xE8, 0x07, 1, 2, 3, 4, 5]);
        let v = decode(&p, 4, None, &BTreeMap::new()).unwrap();
        assert_eq!(
            v,
            vec![
                Param::Number("5".into()),
                Param::Bytes(b"ab".to_vec()),
                Param::Null,
                Param::Bytes(b"2024-01-02 03:04:05".to_vec())
            ]
        );
        assert!(decode(&p[..15], 4, None, &BTreeMap::new()).is_none(), "truncated");
        let types = [0x08u8, 0x80];
        let mut q = vec![0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0];
        q.extend_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(decode(&q, 1, Some(&types), &BTreeMap::new()).unwrap(), vec![Param::Number(u64::MAX.to_string())]);
    }
}
