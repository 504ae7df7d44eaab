//! OFFSET/LIMIT over a merged stream: skip the first rows, let a number through, then refuse the rest
//! (the caller keeps reading the shards to their end so their connections stay reusable).

/// Rows to skip, then rows to let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub skip: u64,
    pub take: u64,
}

/// What to do with the next row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Skip,
    Send,
    /// The limit is reached: no row will be sent any more.
    Done,
}

impl Window {
    pub fn admit(&mut self) -> Admit {
        if self.skip > 0 {
            self.skip -= 1;
            return Admit::Skip;
        }
        if self.take == 0 {
            return Admit::Done;
        }
        self.take -= 1;
        Admit::Send
    }
}

/// `admit` for an optional window (no window: every row is sent).
pub fn admit(w: Option<&mut Window>) -> Admit {
    w.map_or(Admit::Send, Window::admit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_then_limit() {
        let mut w = Window { skip: 2, take: 2 };
        let got: Vec<Admit> = (0..6).map(|_| w.admit()).collect();
        assert_eq!(got, vec![Admit::Skip, Admit::Skip, Admit::Send, Admit::Send, Admit::Done, Admit::Done]);
        assert_eq!(admit(None), Admit::Send);
        assert_eq!(Window { skip: 0, take: 0 }.admit(), Admit::Done);
    }
}
