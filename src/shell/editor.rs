//! A small line editor for the shell's prompt on a terminal: cursor movement, history (kept in
//! `~/.periscope_history`), Ctrl-A/E/U/K/W, and Tab completion of command words.
//!
//! The terminal is put in non-canonical mode with `stty` only while a line is read, so that a
//! command's output and Ctrl-C behave as usual; the keys are decoded and applied by pure code
//! ([`Decoder`], [`Line`]) tested without a terminal.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::command::{completions, Names};

/// Lines of history kept.
const HISTORY_MAX: usize = 1000;

/// One key, decoded from the terminal's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    /// Return.
    Enter,
    /// Backspace.
    Backspace,
    /// Delete (the character under the cursor).
    Delete,
    /// Left arrow, Ctrl-B.
    Left,
    /// Right arrow, Ctrl-F.
    Right,
    /// Up arrow, Ctrl-P.
    Up,
    /// Down arrow, Ctrl-N.
    Down,
    /// Home, Ctrl-A.
    Home,
    /// End, Ctrl-E.
    End,
    /// Ctrl-U.
    KillStart,
    /// Ctrl-K.
    KillEnd,
    /// Ctrl-W.
    KillWord,
    /// Tab.
    Tab,
    /// Ctrl-C.
    Interrupt,
    /// Ctrl-D.
    Eof,
    /// Anything else.
    Ignored,
}

/// Turns the terminal's bytes into keys (escape sequences and UTF-8 included).
#[derive(Debug, Default)]
pub struct Decoder {
    pending: Vec<u8>,
}

impl Decoder {
    /// Feeds one byte; returns the key it completes, if any.
    pub fn feed(&mut self, b: u8) -> Option<Key> {
        self.pending.push(b);
        let p = self.pending.as_slice();
        let key = match p {
            [0x1b] | [0x1b, b'['] | [0x1b, b'O'] => return None,
            [0x1b, b'[', rest @ ..] if rest.last().is_some_and(|c| c.is_ascii_digit()) => {
                return None
            }
            [0x1b, b'[' | b'O', rest @ ..] => match rest {
                b"A" => Key::Up,
                b"B" => Key::Down,
                b"C" => Key::Right,
                b"D" => Key::Left,
                b"H" | b"1~" | b"7~" => Key::Home,
                b"F" | b"4~" | b"8~" => Key::End,
                b"3~" => Key::Delete,
                _ => Key::Ignored,
            },
            [0x1b, _] => Key::Ignored,
            [b'\r' | b'\n'] => Key::Enter,
            [0x7f | 0x08] => Key::Backspace,
            [0x01] => Key::Home,
            [0x02] => Key::Left,
            [0x03] => Key::Interrupt,
            [0x04] => Key::Eof,
            [0x05] => Key::End,
            [0x06] => Key::Right,
            [b'\t'] => Key::Tab,
            [0x0b] => Key::KillEnd,
            [0x0e] => Key::Down,
            [0x10] => Key::Up,
            [0x15] => Key::KillStart,
            [0x17] => Key::KillWord,
            [c] if *c < 0x20 => Key::Ignored,
            [c] if *c < 0x80 => Key::Char(*c as char),
            bytes => match std::str::from_utf8(bytes) {
                Ok(s) => s.chars().next().map_or(Key::Ignored, Key::Char),
                // Still incomplete: at most 4 bytes make a character.
                Err(e) if e.error_len().is_none() && bytes.len() < 4 => return None,
                Err(_) => Key::Ignored,
            },
        };
        self.pending.clear();
        Some(key)
    }
}

/// What a key did to the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Keep reading; redraw.
    Edit,
    /// Keep reading; these completions are to be listed above the line.
    List(Vec<String>),
    /// The line is done.
    Done(String),
    /// The line was abandoned (Ctrl-C).
    Cancelled,
    /// End of input (Ctrl-D on an empty line).
    End,
}

/// The line being edited, with the cursor and the place in the history.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Line {
    /// The characters.
    pub buf: Vec<char>,
    /// Where the cursor is (0..=len).
    pub cursor: usize,
    /// How far back in the history (0: the line being typed).
    back: usize,
    /// The line being typed, while the history is shown.
    draft: Vec<char>,
}

impl Line {
    /// The text.
    pub fn text(&self) -> String {
        self.buf.iter().collect()
    }

    fn set(&mut self, s: &[char]) {
        self.buf = s.to_vec();
        self.cursor = self.buf.len();
    }

    /// Applies one key; `history` is oldest first, `names` what Tab completes arguments from.
    pub fn apply(&mut self, key: Key, history: &[String], names: &Names) -> Outcome {
        match key {
            Key::Char(c) => {
                self.buf.insert(self.cursor, c);
                self.cursor += 1;
            }
            Key::Enter => return Outcome::Done(self.text()),
            Key::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                self.buf.remove(self.cursor);
            }
            Key::Delete if self.cursor < self.buf.len() => {
                self.buf.remove(self.cursor);
            }
            Key::Eof if self.buf.is_empty() => return Outcome::End,
            Key::Eof if self.cursor < self.buf.len() => {
                self.buf.remove(self.cursor);
            }
            Key::Left => self.cursor = self.cursor.saturating_sub(1),
            Key::Right => self.cursor = (self.cursor + 1).min(self.buf.len()),
            Key::Home => self.cursor = 0,
            Key::End => self.cursor = self.buf.len(),
            Key::KillStart => {
                self.buf.drain(..self.cursor);
                self.cursor = 0;
            }
            Key::KillEnd => self.buf.truncate(self.cursor),
            Key::KillWord => {
                let mut start = self.cursor;
                while start > 0 && self.buf[start - 1] == ' ' {
                    start -= 1;
                }
                while start > 0 && self.buf[start - 1] != ' ' {
                    start -= 1;
                }
                self.buf.drain(start..self.cursor);
                self.cursor = start;
            }
            Key::Up if self.back < history.len() => {
                if self.back == 0 {
                    self.draft = self.buf.clone();
                }
                self.back += 1;
                let h: Vec<char> = history[history.len() - self.back].chars().collect();
                self.set(&h);
            }
            Key::Down if self.back > 0 => {
                self.back -= 1;
                let h: Vec<char> = if self.back == 0 {
                    std::mem::take(&mut self.draft)
                } else {
                    history[history.len() - self.back].chars().collect()
                };
                self.set(&h);
            }
            Key::Tab => return self.complete(names),
            Key::Interrupt => return Outcome::Cancelled,
            _ => {}
        }
        Outcome::Edit
    }

    /// Completes the word before the cursor: the one candidate and a blank, else what all the
    /// candidates share, else the list of them.
    fn complete(&mut self, names: &Names) -> Outcome {
        let before: String = self.buf[..self.cursor].iter().collect();
        let partial = before.rsplit(' ').next().unwrap_or("").to_string();
        let options = completions(&before, names);
        let Some(first) = options.first() else { return Outcome::Edit };
        let shared = options.iter().fold(first.clone(), |acc, o| {
            acc.chars().zip(o.chars()).take_while(|(a, b)| a == b).map(|(a, _)| a).collect()
        });
        let mut add: Vec<char> = shared.chars().skip(partial.chars().count()).collect();
        if options.len() == 1 {
            add.push(' ');
        } else if add.is_empty() {
            return Outcome::List(options);
        }
        for c in add {
            self.buf.insert(self.cursor, c);
            self.cursor += 1;
        }
        Outcome::Edit
    }
}

/// The prompt's editor: the history, and the terminal settings to restore.
pub struct Editor {
    history: Vec<String>,
    file: Option<PathBuf>,
}

fn stty(args: &[&str]) -> std::io::Result<String> {
    let out = Command::new("stty").args(args).stdin(Stdio::inherit()).output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "stty {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Editor {
    /// An editor for the terminal on stdin, with the saved history; fails when `stty` cannot
    /// read the terminal's settings.
    pub fn start() -> std::io::Result<Editor> {
        stty(&["-g"])?;
        let file = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".periscope_history"));
        let history = file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .map(|t| t.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect())
            .unwrap_or_default();
        Ok(Editor { history, file })
    }

    /// Reads one line; `None` at the end of input. `names` is asked once per line, at its
    /// first Tab, for the names arguments complete from.
    pub fn read_line(
        &mut self,
        prompt: &str,
        names: &mut dyn FnMut() -> Names,
    ) -> std::io::Result<Option<String>> {
        let saved = stty(&["-g"])?;
        stty(&["-icanon", "-echo", "-isig", "min", "1", "time", "0"])?;
        let r = self.edit(prompt, names);
        stty(&[&saved])?;
        let line = r?;
        if let Some(l) = &line {
            self.remember(l);
        }
        Ok(line)
    }

    fn remember(&mut self, line: &str) {
        let line = line.trim();
        if line.is_empty() || self.history.last().is_some_and(|h| h == line) {
            return;
        }
        self.history.push(line.to_string());
        if self.history.len() > HISTORY_MAX {
            self.history.remove(0);
        }
        if let Some(f) = &self.file {
            let _ = std::fs::write(f, self.history.join("\n") + "\n");
        }
    }

    fn edit(
        &mut self,
        prompt: &str,
        names: &mut dyn FnMut() -> Names,
    ) -> std::io::Result<Option<String>> {
        let mut out = std::io::stdout().lock();
        let mut input = std::io::stdin().lock();
        let mut line = Line::default();
        let mut dec = Decoder::default();
        let redraw = |out: &mut std::io::StdoutLock, l: &Line| -> std::io::Result<()> {
            let left = l.buf.len() - l.cursor;
            write!(out, "\r{prompt}{}\x1b[K", l.text())?;
            if left > 0 {
                write!(out, "\x1b[{left}D")?;
            }
            out.flush()
        };
        redraw(&mut out, &line)?;
        let mut byte = [0u8; 1];
        let (mut known, none) = (None, Names::default());
        loop {
            if input.read(&mut byte)? == 0 {
                writeln!(out)?;
                return Ok(None);
            }
            let Some(key) = dec.feed(byte[0]) else { continue };
            if key == Key::Tab && known.is_none() {
                known = Some(names());
            }
            match line.apply(key, &self.history, known.as_ref().unwrap_or(&none)) {
                Outcome::Edit => redraw(&mut out, &line)?,
                Outcome::List(options) => {
                    writeln!(out, "\r\n{}", options.join("  "))?;
                    redraw(&mut out, &line)?;
                }
                Outcome::Done(text) => {
                    writeln!(out)?;
                    return Ok(Some(text));
                }
                Outcome::Cancelled => {
                    writeln!(out, "^C")?;
                    return Ok(Some(String::new()));
                }
                Outcome::End => {
                    writeln!(out)?;
                    return Ok(None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(bytes: &[u8]) -> Vec<Key> {
        let mut d = Decoder::default();
        bytes.iter().filter_map(|b| d.feed(*b)).collect()
    }

    fn typed(bytes: &[u8], history: &[String]) -> (Line, Vec<Outcome>) {
        let mut l = Line::default();
        let outcomes =
            keys(bytes).into_iter().map(|k| l.apply(k, history, &Names::default())).collect();
        (l, outcomes)
    }

    #[test]
    fn keys_decode_from_escape_sequences_and_utf8() {
        assert_eq!(
            keys(b"a\x1b[A\x1b[D\x1bOH\x1b[3~\x1b[F\x7f\r"),
            vec![
                Key::Char('a'),
                Key::Up,
                Key::Left,
                Key::Home,
                Key::Delete,
                Key::End,
                Key::Backspace,
                Key::Enter
            ]
        );
        assert_eq!(keys("é".as_bytes()), vec![Key::Char('é')]);
        assert_eq!(keys(b"\x1b[Z\x1bx\xff"), vec![Key::Ignored, Key::Ignored, Key::Ignored]);
        assert_eq!(keys(b"\x03\x04\t"), vec![Key::Interrupt, Key::Eof, Key::Tab]);
    }

    #[test]
    fn editing_moves_and_kills() {
        let (l, _) = typed(b"stas\x1b[Dt", &[]);
        assert_eq!(l.text(), "stats");
        let (l, _) = typed(b"show taps bank-a\x17", &[]);
        assert_eq!(l.text(), "show taps ");
        let (l, _) = typed(b"where abc\x01\x0b", &[]);
        assert_eq!(l.text(), "");
        let (l, _) = typed(b"where abc\x1b[D\x1b[D\x15", &[]);
        assert_eq!((l.text().as_str(), l.cursor), ("bc", 0));
        let (_, o) = typed(b"stats\r", &[]);
        assert_eq!(o.last(), Some(&Outcome::Done("stats".into())));
        let (_, o) = typed(b"\x04", &[]);
        assert_eq!(o, vec![Outcome::End]);
        let (_, o) = typed(b"sta\x03", &[]);
        assert_eq!(o.last(), Some(&Outcome::Cancelled));
    }

    #[test]
    fn history_goes_back_and_returns_to_the_draft() {
        let h = vec!["show switches".to_string(), "stats".to_string()];
        let (l, _) = typed(b"wh\x1b[A", &h);
        assert_eq!(l.text(), "stats");
        let (l, _) = typed(b"wh\x1b[A\x1b[A\x1b[A", &h);
        assert_eq!(l.text(), "show switches");
        let (l, _) = typed(b"wh\x1b[A\x1b[A\x1b[B\x1b[B", &h);
        assert_eq!(l.text(), "wh");
    }

    proptest::proptest! {
        /// Whatever the terminal sends, decoding and editing never panic and the cursor stays
        /// inside the line.
        #[test]
        fn any_bytes_keep_the_line_consistent(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let history = vec!["show switches".to_string(), "stats".to_string()];
            let mut d = Decoder::default();
            let mut l = Line::default();
            for b in bytes {
                if let Some(k) = d.feed(b) {
                    if let Outcome::Done(_) | Outcome::End | Outcome::Cancelled = l.apply(k, &history, &Names::default()) {
                        l = Line::default();
                    }
                    proptest::prop_assert!(l.cursor <= l.buf.len());
                }
            }
        }
    }

    #[test]
    fn tab_completes_or_lists() {
        let (l, _) = typed(b"sh\t", &[]);
        assert_eq!(l.text(), "show ");
        let (l, _) = typed(b"show sw\t", &[]);
        assert_eq!(l.text(), "show switches ");
        let (l, o) = typed(b"show t\t", &[]);
        assert_eq!(l.text(), "show t");
        assert_eq!(
            o.last(),
            Some(&Outcome::List(vec!["tap".into(), "taps".into(), "topology".into()]))
        );
        let (l, _) = typed(b"show ta\t", &[]);
        assert_eq!(l.text(), "show tap");
    }
}
