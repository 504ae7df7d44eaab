//! Mycat's name-range syntax: `dn$1-3` → dn1, dn2, dn3; comma lists may mix plain names and ranges.

/// Expands one item (`prefix$a-b` or a plain name). `Err` names what is wrong with the range.
pub fn expand_item(item: &str) -> Result<Vec<String>, String> {
    let item = item.trim();
    let Some((prefix, range)) = item.split_once('$') else {
        return Ok(vec![item.to_string()]);
    };
    let (a, b) = range.split_once('-').ok_or_else(|| format!("range '{item}' needs the form prefix$a-b"))?;
    let a: u64 = a.trim().parse().map_err(|_| format!("range '{item}': '{a}' is not a number"))?;
    let b: u64 = b.trim().parse().map_err(|_| format!("range '{item}': '{b}' is not a number"))?;
    if b < a {
        return Err(format!("range '{item}' ends before it starts"));
    }
    if b - a > 100_000 {
        return Err(format!("range '{item}' is too large"));
    }
    Ok((a..=b).map(|i| format!("{prefix}{i}")).collect())
}

/// Expands a comma list of items.
pub fn expand_list(list: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for item in list.split(',').filter(|s| !s.trim().is_empty()) {
        out.extend(expand_item(item)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_lists() {
        assert_eq!(expand_list("dn$1-3").unwrap(), vec!["dn1", "dn2", "dn3"]);
        assert_eq!(expand_list("detail_dn0,detail_dn$1-2").unwrap(), vec!["detail_dn0", "detail_dn1", "detail_dn2"]);
        assert_eq!(expand_list("offer_dn$0-127").unwrap().len(), 128);
        assert!(expand_list("dn$3-1").is_err());
        assert!(expand_list("dn$a-2").is_err());
        assert!(expand_list("dn$1").is_err());
    }
}
