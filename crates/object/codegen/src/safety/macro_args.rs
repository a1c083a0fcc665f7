//! Reading inside macro invocations. `syn` leaves a macro's arguments as
//! tokens, but a hazard in `format!("{}", std::process::id())` or
//! `vec![SystemTime::now()]` is as real as one outside a macro. Arguments
//! are parsed as expressions (or, for macros whose body is code, as
//! statements) so the checker reads them like any other code; whatever
//! parses as neither is scanned token by token for paths and method calls.
//! Format strings are read for `{:?}` (Debug lists a hash collection in its
//! random order) and `{:p}` (a memory address, different on every replica).

use proc_macro2::{Delimiter, Spacing, Span, TokenStream, TokenTree};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, Token};

/// Macros that take a format string, and how many arguments precede it.
pub const FORMAT_MACROS: &[(&str, usize)] = &[
    ("format", 0),
    ("format_args", 0),
    ("print", 0),
    ("println", 0),
    ("eprint", 0),
    ("eprintln", 0),
    ("panic", 0),
    ("unreachable", 0),
    ("todo", 0),
    ("unimplemented", 0),
    ("write", 1),
    ("writeln", 1),
    ("assert", 1),
    ("debug_assert", 1),
    ("assert_eq", 2),
    ("assert_ne", 2),
    ("debug_assert_eq", 2),
    ("debug_assert_ne", 2),
    ("info", 0),
    ("warn", 0),
    ("error", 0),
    ("debug", 0),
    ("trace", 0),
    ("log", 0),
    ("event", 0),
    ("anyhow", 0),
    ("bail", 0),
    ("format_err", 0),
    ("ensure", 1),
];

/// Macros of the standard prelude: a `use x::*` does not rename them.
pub const PRELUDE_MACROS: &[&str] = &[
    "env",
    "option_env",
    "concat",
    "stringify",
    "line",
    "column",
    "file",
    "module_path",
    "include_str",
    "include_bytes",
    "cfg",
    "matches",
    "vec",
    "format",
    "write",
    "writeln",
    "print",
    "println",
    "eprint",
    "eprintln",
    "panic",
    "assert",
    "assert_eq",
    "assert_ne",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "unreachable",
    "todo",
    "unimplemented",
    "dbg",
    "format_args",
    "compile_error",
];

/// One argument of a macro.
pub struct Arg {
    /// `name` of a `name = value` argument.
    pub name: Option<String>,
    /// The value.
    pub expr: Expr,
    /// A tracing-style `?value`: formatted with Debug.
    pub debug: bool,
}

/// A macro's arguments, as far as they parse.
#[derive(Default)]
pub struct MacroArgs {
    /// Arguments that parse as expressions, in order.
    pub args: Vec<Arg>,
    /// The body, for a macro whose body is statements.
    pub stmts: Vec<syn::Stmt>,
    /// Pieces that parse as neither.
    pub unparsed: Vec<TokenStream>,
}

/// Parses a macro's tokens: as comma-separated expressions, as `expr;
/// expr` (`vec![x; n]`), as statements, or else piece by piece.
pub fn parse(tokens: &TokenStream) -> MacroArgs {
    let mut out = MacroArgs::default();
    if tokens.is_empty() {
        return out;
    }
    if let Ok(list) = Punctuated::<Expr, Token![,]>::parse_terminated.parse2(tokens.clone()) {
        out.args = list.into_iter().map(named).collect();
        return out;
    }
    let repeat = |input: syn::parse::ParseStream| -> syn::Result<(Expr, Expr)> {
        let value: Expr = input.parse()?;
        input.parse::<Token![;]>()?;
        let count: Expr = input.parse()?;
        Ok((value, count))
    };
    if let Ok((value, count)) = repeat.parse2(tokens.clone()) {
        out.args = vec![named(value), named(count)];
        return out;
    }
    if let Ok(stmts) = syn::Block::parse_within.parse2(tokens.clone()) {
        out.stmts = stmts;
        return out;
    }
    for piece in split_top_level(tokens) {
        let (name, debug, rest) = strip_prefixes(piece);
        match syn::parse2::<Expr>(rest.clone()) {
            Ok(expr) => out.args.push(Arg { name, expr, debug }),
            Err(_) => out.unparsed.push(rest),
        }
    }
    out
}

/// `name = value` as a named argument.
fn named(expr: Expr) -> Arg {
    if let Expr::Assign(a) = &expr
        && let Expr::Path(p) = &*a.left
        && let Some(name) = p.path.get_ident()
    {
        return Arg {
            name: Some(name.to_string()),
            expr: (*a.right).clone(),
            debug: false,
        };
    }
    Arg {
        name: None,
        expr,
        debug: false,
    }
}

/// Splits at top-level `,` and `;`.
fn split_top_level(tokens: &TokenStream) -> Vec<TokenStream> {
    let mut pieces = Vec::new();
    let mut current = Vec::new();
    for tt in tokens.clone() {
        match &tt {
            TokenTree::Punct(p) if p.as_char() == ',' || p.as_char() == ';' => {
                pieces.push(current.drain(..).collect());
            }
            _ => current.push(tt),
        }
    }
    if !current.is_empty() {
        pieces.push(current.into_iter().collect());
    }
    pieces
}

/// Strips a `name =` or `name:` prefix (format and tracing arguments) and a
/// `?`/`%` sigil (tracing's Debug/Display).
fn strip_prefixes(piece: TokenStream) -> (Option<String>, bool, TokenStream) {
    let tokens: Vec<TokenTree> = piece.into_iter().collect();
    let mut start = 0;
    let mut name = None;
    // `a.b.c =` or `target:` (but not `==` or `::`).
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Ident(_) => i += 1,
            TokenTree::Punct(p) if p.as_char() == '.' => i += 1,
            _ => break,
        }
    }
    if i > 0
        && let Some(TokenTree::Punct(p)) = tokens.get(i)
        && (p.as_char() == '=' || p.as_char() == ':')
        && p.spacing() == Spacing::Alone
    {
        name = Some(
            tokens[..i]
                .iter()
                .map(|t| t.to_string())
                .collect::<String>(),
        );
        start = i + 1;
    }
    let mut debug = false;
    if let Some(TokenTree::Punct(p)) = tokens.get(start)
        && (p.as_char() == '?' || p.as_char() == '%')
    {
        debug = p.as_char() == '?';
        start += 1;
    }
    (name, debug, tokens[start..].iter().cloned().collect())
}

/// Which format argument a placeholder refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgRef {
    /// By position among the arguments after the format string.
    Index(usize),
    /// By name: a `name = value` argument, or a variable in scope.
    Name(String),
}

/// How a placeholder formats its argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// `{:?}`, `{:#?}`, `{:x?}`.
    Debug,
    /// `{:p}`: the address.
    Pointer,
    /// Anything else.
    Other,
}

/// The placeholders of a format string, in order.
pub fn placeholders(fmt: &str) -> Vec<(ArgRef, Style)> {
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = Vec::new();
    let mut next = 0;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '{' if chars.get(i + 1) == Some(&'{') => i += 2,
            '{' => {
                let Some(len) = chars[i + 1..].iter().position(|c| *c == '}') else {
                    break;
                };
                let inner: String = chars[i + 1..i + 1 + len].iter().collect();
                i += len + 2;
                let (arg, spec) = inner.split_once(':').unwrap_or((&inner, ""));
                if spec.contains(".*") {
                    next += 1;
                }
                let arg = arg.trim();
                let arg_ref = if arg.is_empty() {
                    next += 1;
                    ArgRef::Index(next - 1)
                } else if let Ok(n) = arg.parse() {
                    ArgRef::Index(n)
                } else {
                    ArgRef::Name(arg.to_string())
                };
                let style = if spec.ends_with('?') {
                    Style::Debug
                } else if spec.ends_with('p') {
                    Style::Pointer
                } else {
                    Style::Other
                };
                out.push((arg_ref, style));
            }
            _ => i += 1,
        }
    }
    out
}

/// A path or a method call found by scanning tokens.
pub enum Scanned {
    /// `a::b::c` (or a lone identifier).
    Path(Span, Vec<String>),
    /// `receiver.method(`: the identifier before the dot and the method.
    Method(Span, String, String),
}

/// Scans tokens (into every group) for paths and method calls.
pub fn scan(tokens: &TokenStream) -> Vec<Scanned> {
    let mut out = Vec::new();
    scan_into(tokens, &mut out);
    out
}

fn scan_into(tokens: &TokenStream, out: &mut Vec<Scanned>) {
    let tts: Vec<TokenTree> = tokens.clone().into_iter().collect();
    let mut i = 0;
    while i < tts.len() {
        match &tts[i] {
            TokenTree::Group(g) => {
                scan_into(&g.stream(), out);
                i += 1;
            }
            TokenTree::Ident(first) => {
                let preceded_by_dot =
                    i > 0 && matches!(&tts[i - 1], TokenTree::Punct(p) if p.as_char() == '.');
                let calls = matches!(tts.get(i + 1), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis);
                if preceded_by_dot && calls {
                    let receiver = match i.checked_sub(2).map(|j| &tts[j]) {
                        Some(TokenTree::Ident(r)) => r.to_string(),
                        _ => String::new(),
                    };
                    out.push(Scanned::Method(first.span(), receiver, first.to_string()));
                    i += 1;
                    continue;
                }
                let mut segs = vec![first.to_string()];
                let mut j = i + 1;
                while let (
                    Some(TokenTree::Punct(a)),
                    Some(TokenTree::Punct(b)),
                    Some(TokenTree::Ident(id)),
                ) = (tts.get(j), tts.get(j + 1), tts.get(j + 2))
                {
                    if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':' {
                        segs.push(id.to_string());
                        j += 3;
                    } else {
                        break;
                    }
                }
                if !preceded_by_dot {
                    out.push(Scanned::Path(first.span(), segs));
                }
                i = j;
            }
            _ => i += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_positions_names_and_precision_arguments() {
        let got = placeholders("{} {:?} {{}} {name:p} {1:#?} {:.*} {x}");
        assert_eq!(
            got,
            vec![
                (ArgRef::Index(0), Style::Other),
                (ArgRef::Index(1), Style::Debug),
                (ArgRef::Name("name".into()), Style::Pointer),
                (ArgRef::Index(1), Style::Debug),
                (ArgRef::Index(3), Style::Other),
                (ArgRef::Name("x".into()), Style::Other),
            ]
        );
    }

    #[test]
    fn macro_arguments_parse_as_expressions_repeats_or_statements() {
        let tokens: TokenStream = "\"{}\", a = std::process::id()".parse().expect("tokens");
        let args = parse(&tokens);
        assert_eq!(args.args.len(), 2);
        assert_eq!(args.args[1].name.as_deref(), Some("a"));
        let tokens: TokenStream = "SystemTime::now(); 3".parse().expect("tokens");
        assert_eq!(parse(&tokens).args.len(), 2);
        let tokens: TokenStream = "static X: u8 = 1;".parse().expect("tokens");
        assert_eq!(parse(&tokens).stmts.len(), 1);
        let tokens: TokenStream = "target: \"t\", field = ?self.m, \"done\""
            .parse()
            .expect("tokens");
        let args = parse(&tokens);
        assert!(args.args.iter().any(|a| a.debug));
    }
}
