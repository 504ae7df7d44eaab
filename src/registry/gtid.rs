//! MariaDB GTID positions (`domain-server-seq` lists): whether a replica's position covers a write.

/// (domain, seq) pairs of a position like `0-1-42,1-2-7`.
pub fn parse(pos: &str) -> Vec<(u32, u64)> {
    pos.split(',')
        .filter_map(|g| {
            let mut it = g.trim().split('-');
            let d = it.next()?.parse().ok()?;
            let _server: u64 = it.next()?.parse().ok()?;
            let s = it.next()?.parse().ok()?;
            Some((d, s))
        })
        .collect()
}

/// Whether `pos` has applied everything in `need` (every domain of `need` at least as far).
pub fn covers(pos: &str, need: &str) -> bool {
    let have = parse(pos);
    parse(need).iter().all(|(d, s)| have.iter().any(|(hd, hs)| hd == d && hs >= s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage() {
        assert!(covers("1-1-10,2-3-5", "1-1-9"));
        assert!(covers("1-1-10", "1-1-10"));
        assert!(!covers("1-1-10", "1-1-11"));
        assert!(!covers("1-1-10", "2-3-1"), "a domain the replica never saw");
        assert!(covers("", ""));
        assert_eq!(parse("0-1-42, 1-2-7"), vec![(0, 42), (1, 7)]);
    }
}
