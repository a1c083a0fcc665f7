//! The second pass: walks each file with the crate's [`CrateIndex`] and
//! records a [`Finding`] for every hazard, with its line and a reason that
//! names it. Macro arguments are read as code ([`super::macro_args`]),
//! paths are checked under every reading their `use` aliases allow, and
//! hash-order operations are judged on the typed value they apply to
//! ([`super::infer`]).

use super::Finding;
use super::hazards::{
    ADDRESS_METHODS, CLOCK_METHODS, HASH_ORDER_METHODS, INTEGER_TYPES, ITERATING_CONSUMERS,
    POINTER_MACROS, POINTER_METHODS, SERIALIZER_CRATES, STATIC_MACROS, forbidden_name,
    forbidden_path, is_interior_mutable,
};
use super::infer::{Infer, Scopes};
use super::macro_args::{self, ArgRef, FORMAT_MACROS, PRELUDE_MACROS, Scanned, Style};
use super::resolve::{CrateIndex, is_test_only, item_attrs, segments};
use super::types::{Inferred, Shape};
use proc_macro2::Span;
use std::collections::BTreeSet;
use std::path::PathBuf;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::{Expr, Type};

const HASH_FIX: &str = "use a BTreeMap/BTreeSet";

/// Checks one file.
pub struct Checker<'a> {
    file: Option<PathBuf>,
    infer: Infer<'a>,
    findings: BTreeSet<Finding>,
    /// What the closures among the arguments being visited receive.
    closure_params: Option<Vec<Inferred>>,
    /// Field names whose type is a random hash collection (for macro
    /// bodies, which cannot be typed).
    hash_fields: BTreeSet<String>,
}

/// A short name for an expression in a message: a variable or field name,
/// or the code itself, cut short.
fn subject(e: &Expr) -> String {
    match e {
        Expr::Path(p) => {
            if let Some(i) = p.path.get_ident() {
                return i.to_string();
            }
        }
        Expr::Field(f) => {
            if let syn::Member::Named(n) = &f.member {
                return n.to_string();
            }
        }
        Expr::Reference(r) => return subject(&r.expr),
        Expr::Paren(p) => return subject(&p.expr),
        _ => {}
    }
    let text = quote::quote!(#e)
        .to_string()
        .replace(" . ", ".")
        .replace(" :: ", "::")
        .replace("& ", "&")
        .replace(" (", "(")
        .replace("( ", "(")
        .replace(" )", ")");
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(39).collect::<String>())
    } else {
        text
    }
}

impl<'a> Checker<'a> {
    /// A checker for one file of the crate `index` describes.
    pub fn new(index: &'a CrateIndex, file: Option<PathBuf>) -> Checker<'a> {
        let hash_fields = index
            .fields
            .values()
            .flatten()
            .filter(|(_, t)| index.is_random_hash(t))
            .map(|(n, _)| n.clone())
            .collect();
        Checker {
            file,
            infer: Infer {
                index,
                scopes: Scopes::default(),
                self_ty: None,
            },
            findings: BTreeSet::new(),
            closure_params: None,
            hash_fields,
        }
    }

    /// The findings so far.
    pub fn into_findings(self) -> BTreeSet<Finding> {
        self.findings
    }

    fn index(&self) -> &'a CrateIndex {
        self.infer.index
    }

    fn flag(&mut self, span: Span, reason: impl Into<String>) {
        self.findings.insert(Finding {
            file: self.file.clone(),
            line: span.start().line,
            reason: reason.into(),
        });
    }

    /// Checks a path under each of its readings.
    fn check_path(&mut self, span: Span, segs: &[String], is_macro: bool) {
        if segs.len() == 1 && self.infer.scopes.lookup(&segs[0]).is_some() {
            return;
        }
        let with_globs =
            !(is_macro && segs.len() == 1 && PRELUDE_MACROS.contains(&segs[0].as_str()));
        let written = segs.join("::");
        let readings = self.index().readings(segs, with_globs);
        for reading in &readings {
            let joined = reading.join("::");
            if let Some(reason) = forbidden_path(&joined) {
                let shown = if joined == written {
                    format!("`{written}`")
                } else {
                    format!("`{written}` is `{joined}`")
                };
                self.flag(span, format!("{reason} ({shown})"));
                return;
            }
        }
        // A bare name (or the head of a path) no `use` explains may come
        // from a glob of another crate: judge it by its name. Inside a
        // crate-qualified path (`syn::File`) the name is that crate's.
        if let Some(head) = segs.first()
            && let Some(reason) = forbidden_name(head)
            && !self.index().is_local_item(head)
        {
            self.flag(span, format!("{reason} (`{written}`)"));
        }
    }

    /// `how`: how the collection is iterated, e.g. " (`.keys()`)".
    fn flag_hash_order(&mut self, span: Span, how: &str, e: &Expr, v: &Inferred) {
        let name = subject(e);
        let reason = match v {
            Inferred::Suspect => format!(
                "iterating `{name}`{how}, which may be a HashMap/HashSet (its type is not written out), \
                 visits its entries in a random order; write its type, or {HASH_FIX}"
            ),
            _ => format!(
                "iterating the HashMap/HashSet `{name}`{how} visits its entries in a random order; {HASH_FIX}"
            ),
        };
        self.flag(span, reason);
    }

    fn flag_debug(&mut self, span: Span, e: &Expr) {
        let name = subject(e);
        self.flag(
            span,
            format!(
                "Debug formatting (`{{:?}}`) of `{name}`, which holds a HashMap/HashSet, \
                 lists its entries in a random order; {HASH_FIX}"
            ),
        );
    }

    /// Whether `e` is, or is derived from, a pointer or a function address.
    fn is_pointerish(&self, e: &Expr) -> bool {
        match e {
            Expr::Cast(c) => {
                matches!(&*c.ty, Type::Ptr(_) | Type::BareFn(_)) || self.is_pointerish(&c.expr)
            }
            Expr::Paren(p) => self.is_pointerish(&p.expr),
            Expr::Group(g) => self.is_pointerish(&g.expr),
            Expr::MethodCall(m) => POINTER_METHODS.contains(&m.method.to_string().as_str()),
            Expr::Call(c) => match &*c.func {
                Expr::Path(p) => {
                    let readings = self.index().readings(&segments(&p.path), false);
                    readings.iter().any(|r| {
                        r.last()
                            .is_some_and(|l| POINTER_METHODS.contains(&l.as_str()))
                            || matches!(r.first().map(String::as_str), Some("std" | "core"))
                                && r.get(1).is_some_and(|m| m == "ptr")
                    })
                }
                _ => false,
            },
            Expr::Macro(m) => m
                .mac
                .path
                .segments
                .last()
                .is_some_and(|s| POINTER_MACROS.contains(&s.ident.to_string().as_str())),
            Expr::Path(p) => {
                if let Some(Inferred::Known(t)) = p
                    .path
                    .get_ident()
                    .and_then(|i| self.infer.scopes.lookup(&i.to_string()))
                {
                    return matches!(self.index().peel(t), Type::Ptr(_) | Type::BareFn(_));
                }
                p.path.get_ident().is_some_and(|i| {
                    let name = i.to_string();
                    self.infer.scopes.lookup(&name).is_none() && self.index().fns.contains(&name)
                })
            }
            _ => false,
        }
    }

    /// Visits `args`, telling closures among them what they receive.
    fn visit_args<'e>(&mut self, args: impl IntoIterator<Item = &'e Expr>, params: &[Inferred]) {
        for a in args {
            if matches!(a, Expr::Closure(_)) {
                self.closure_params = Some(params.to_vec());
            }
            self.visit_expr(a);
            self.closure_params = None;
        }
    }

    fn check_format(&mut self, name: &str, args: &[macro_args::Arg]) {
        let Some((_, before)) = FORMAT_MACROS.iter().find(|(m, _)| *m == name) else {
            return;
        };
        let found = args
            .iter()
            .enumerate()
            .skip(*before)
            .find_map(|(i, a)| match &a.expr {
                Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some((i, s.clone())),
                _ => None,
            });
        let Some((at, fmt)) = found else {
            return;
        };
        let rest = &args[at + 1..];
        for (arg, style) in macro_args::placeholders(&fmt.value()) {
            match style {
                Style::Pointer => self.flag(
                    fmt.span(),
                    "pointer formatting (`{:p}`) prints a memory address, which differs between replicas",
                ),
                Style::Debug => {
                    let expr = match &arg {
                        ArgRef::Index(n) => rest.get(*n).map(|a| a.expr.clone()),
                        ArgRef::Name(n) => rest
                            .iter()
                            .find(|a| a.name.as_deref() == Some(n.as_str()))
                            .map(|a| a.expr.clone())
                            .or_else(|| syn::parse_str::<Expr>(n).ok()),
                    };
                    if let Some(e) = expr
                        && self.index().holds_hash(&self.infer.expr(&e))
                    {
                        self.flag_debug(fmt.span(), &e);
                    }
                }
                Style::Other => {}
            }
        }
    }

    /// Tokens no parser understood: paths are checked, and a hash
    /// collection's field iterated by name is flagged.
    fn scan_tokens(&mut self, tokens: &proc_macro2::TokenStream) {
        for found in macro_args::scan(tokens) {
            match found {
                Scanned::Path(span, segs) => self.check_path(span, &segs, false),
                Scanned::Method(span, receiver, method) => {
                    if HASH_ORDER_METHODS.contains(&method.as_str())
                        && self.hash_fields.contains(&receiver)
                    {
                        self.flag(
                            span,
                            format!(
                                "iterating the HashMap/HashSet `{receiver}` (`.{method}()`) visits its entries in a random order; {HASH_FIX}"
                            ),
                        );
                    }
                    if CLOCK_METHODS.contains(&method.as_str()) {
                        self.flag(
                            span,
                            format!("wall-clock time (`.{method}()` reads the clock)"),
                        );
                    }
                }
            }
        }
    }

    /// A hash collection passed to one of the crate's functions whose
    /// parameter takes any type (`T`, `impl IntoIterator`): the function may
    /// iterate it.
    fn check_generic_args<'e>(
        &mut self,
        span: Span,
        function: &str,
        args: impl Iterator<Item = &'e Expr>,
    ) {
        let Some(any_type) = self.index().generic_params.get(function) else {
            return;
        };
        let any_type = any_type.clone();
        for (a, generic) in args.zip(any_type) {
            let v = self.infer.expr(a);
            if generic && self.index().is_hash_value(&v) {
                self.flag_hash_order(
                    span,
                    &format!(" (passed to `{function}`, which takes any type and may iterate it)"),
                    a,
                    &v,
                );
            }
        }
    }

    fn with_scope(&mut self, f: impl FnOnce(&mut Self)) {
        self.infer.scopes.push();
        f(self);
        self.infer.scopes.pop();
    }

    fn bind_params(&mut self, sig: &syn::Signature) {
        for input in &sig.inputs {
            match input {
                syn::FnArg::Receiver(_) => {
                    let v = self
                        .infer
                        .self_ty
                        .clone()
                        .map_or(Inferred::Unknown, Inferred::Known);
                    self.infer.scopes.bind("self".into(), v);
                }
                syn::FnArg::Typed(pt) => {
                    self.infer.bind(&pt.pat, Inferred::Known((*pt.ty).clone()));
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Checker<'_> {
    fn visit_item(&mut self, i: &'ast syn::Item) {
        if !is_test_only(item_attrs(i)) {
            visit::visit_item(self, i);
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        self.check_path(p.span(), &segments(p), false);
        visit::visit_path(self, p);
    }

    fn visit_expr_path(&mut self, e: &'ast syn::ExprPath) {
        let local = e
            .path
            .get_ident()
            .is_some_and(|i| self.infer.scopes.lookup(&i.to_string()).is_some());
        if !local {
            visit::visit_expr_path(self, e);
        }
    }

    fn visit_use_tree(&mut self, tree: &'ast syn::UseTree) {
        fn walk(c: &mut Checker<'_>, tree: &syn::UseTree, prefix: &mut Vec<String>) {
            match tree {
                syn::UseTree::Path(p) => {
                    prefix.push(p.ident.to_string());
                    walk(c, &p.tree, prefix);
                    prefix.pop();
                }
                syn::UseTree::Name(n) => {
                    if n.ident != "self" {
                        prefix.push(n.ident.to_string());
                    }
                    c.check_path(n.ident.span(), prefix, false);
                    if n.ident != "self" {
                        prefix.pop();
                    }
                }
                syn::UseTree::Rename(r) => {
                    if r.ident != "self" {
                        prefix.push(r.ident.to_string());
                    }
                    c.check_path(r.ident.span(), prefix, false);
                    if r.ident != "self" {
                        prefix.pop();
                    }
                }
                syn::UseTree::Glob(g) => c.check_path(g.star_token.span, prefix, false),
                syn::UseTree::Group(g) => {
                    for t in &g.items {
                        walk(c, t, prefix);
                    }
                }
            }
        }
        walk(self, tree, &mut Vec::new());
    }

    fn visit_item_extern_crate(&mut self, e: &'ast syn::ItemExternCrate) {
        self.check_path(e.ident.span(), &[e.ident.to_string()], false);
    }

    fn visit_item_foreign_mod(&mut self, f: &'ast syn::ItemForeignMod) {
        self.flag(
            f.abi.extern_token.span,
            "foreign (FFI) functions: code the check cannot read",
        );
        visit::visit_item_foreign_mod(self, f);
    }

    fn visit_expr_unsafe(&mut self, e: &'ast syn::ExprUnsafe) {
        self.flag(e.unsafe_token.span, "unsafe code");
        visit::visit_expr_unsafe(self, e);
    }

    fn visit_signature(&mut self, s: &'ast syn::Signature) {
        if let Some(u) = &s.unsafety {
            self.flag(u.span, "unsafe code");
        }
        visit::visit_signature(self, s);
    }

    fn visit_item_trait(&mut self, t: &'ast syn::ItemTrait) {
        if let Some(u) = &t.unsafety {
            self.flag(u.span, "unsafe code");
        }
        visit::visit_item_trait(self, t);
    }

    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        if let Some(u) = &i.unsafety {
            self.flag(u.span, "unsafe code");
        }
        let outer = self.infer.self_ty.replace((*i.self_ty).clone());
        visit::visit_item_impl(self, i);
        self.infer.self_ty = outer;
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if is_test_only(&f.attrs) {
            return;
        }
        self.with_scope(|c| {
            c.bind_params(&f.sig);
            visit::visit_impl_item_fn(c, f);
        });
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        let outer = self.infer.self_ty.take();
        self.with_scope(|c| {
            c.bind_params(&f.sig);
            visit::visit_item_fn(c, f);
        });
        self.infer.self_ty = outer;
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        self.with_scope(|c| {
            c.bind_params(&f.sig);
            visit::visit_trait_item_fn(c, f);
        });
    }

    fn visit_item_static(&mut self, s: &'ast syn::ItemStatic) {
        if matches!(s.mutability, syn::StaticMutability::Mut(_)) {
            self.flag(s.static_token.span, "static mutable state (`static mut`)");
        } else if self.index().mentions(&s.ty, &is_interior_mutable) {
            self.flag(
                s.static_token.span,
                "static mutable state (a static with interior mutability)",
            );
        }
        visit::visit_item_static(self, s);
    }

    fn visit_block(&mut self, b: &'ast syn::Block) {
        self.with_scope(|c| visit::visit_block(c, b));
    }

    fn visit_local(&mut self, l: &'ast syn::Local) {
        let mut v = Inferred::Unknown;
        if let Some(init) = &l.init {
            self.visit_expr(&init.expr);
            if let Some((_, diverge)) = &init.diverge {
                self.visit_expr(diverge);
            }
            v = self.infer.expr(&init.expr);
        }
        self.visit_pat(&l.pat);
        self.infer.bind(&l.pat, v);
    }

    fn visit_expr_let(&mut self, e: &'ast syn::ExprLet) {
        self.visit_expr(&e.expr);
        self.visit_pat(&e.pat);
        let v = self.infer.expr(&e.expr);
        self.infer.bind(&e.pat, v);
    }

    fn visit_expr_if(&mut self, e: &'ast syn::ExprIf) {
        self.with_scope(|c| {
            c.visit_expr(&e.cond);
            c.visit_block(&e.then_branch);
        });
        if let Some((_, other)) = &e.else_branch {
            self.visit_expr(other);
        }
    }

    fn visit_expr_while(&mut self, e: &'ast syn::ExprWhile) {
        self.with_scope(|c| {
            c.visit_expr(&e.cond);
            c.visit_block(&e.body);
        });
    }

    fn visit_expr_match(&mut self, e: &'ast syn::ExprMatch) {
        self.visit_expr(&e.expr);
        let v = self.infer.expr(&e.expr);
        for arm in &e.arms {
            self.with_scope(|c| {
                c.visit_pat(&arm.pat);
                c.infer.bind(&arm.pat, v.clone());
                if let Some((_, guard)) = &arm.guard {
                    c.visit_expr(guard);
                }
                c.visit_expr(&arm.body);
            });
        }
    }

    fn visit_expr_for_loop(&mut self, f: &'ast syn::ExprForLoop) {
        self.visit_expr(&f.expr);
        let over = self.infer.expr(&f.expr);
        if self.index().is_hash_value(&over) {
            self.flag_hash_order(f.for_token.span, "", &f.expr, &over);
        }
        let item = self.infer.loop_item(&over);
        self.with_scope(|c| {
            c.visit_pat(&f.pat);
            c.infer.bind(&f.pat, item);
            c.visit_block(&f.body);
        });
    }

    fn visit_expr_closure(&mut self, e: &'ast syn::ExprClosure) {
        let params = self.closure_params.take().unwrap_or_default();
        self.with_scope(|c| {
            for (i, input) in e.inputs.iter().enumerate() {
                c.visit_pat(input);
                let v = params.get(i).cloned().unwrap_or(Inferred::Unknown);
                c.infer.bind(input, v);
            }
            if let syn::ReturnType::Type(_, t) = &e.output {
                c.visit_type(t);
            }
            c.visit_expr(&e.body);
        });
    }

    fn visit_expr_method_call(&mut self, m: &'ast syn::ExprMethodCall) {
        self.visit_expr(&m.receiver);
        let method = m.method.to_string();
        let recv = self.infer.expr(&m.receiver);
        let span = m.method.span();
        if HASH_ORDER_METHODS.contains(&method.as_str()) && self.index().is_hash_value(&recv) {
            self.flag_hash_order(span, &format!(" (`.{method}()`)"), &m.receiver, &recv);
        }
        let receiver_is_collection = match &recv {
            Inferred::Known(t) => matches!(self.index().shape(t), Shape::Map(..) | Shape::Set(_)),
            _ => false,
        };
        if ITERATING_CONSUMERS.contains(&method.as_str()) && !receiver_is_collection {
            for a in &m.args {
                let v = self.infer.expr(a);
                if self.index().is_hash_value(&v) {
                    self.flag_hash_order(span, &format!(" (passed to `.{method}()`)"), a, &v);
                }
            }
        }
        if method == "serialize" && self.index().holds_hash(&recv) {
            self.flag(
                span,
                format!(
                    "serializing `{}`, which holds a HashMap/HashSet, writes its entries in a random order; {HASH_FIX}",
                    subject(&m.receiver)
                ),
            );
        }
        if CLOCK_METHODS.contains(&method.as_str()) {
            self.flag(
                span,
                format!("wall-clock time (`.{method}()` reads the clock)"),
            );
        }
        if ADDRESS_METHODS.contains(&method.as_str()) && self.is_pointerish(&m.receiver) {
            self.flag(
                span,
                format!("a pointer's address (`.{method}()`) differs between replicas"),
            );
        }
        if POINTER_METHODS.contains(&method.as_str()) {
            self.flag(
                span,
                format!("raw pointers (`.{method}()`): memory addresses differ between replicas"),
            );
        }
        if matches!(method.as_str(), "flatten" | "flat_map")
            && let Inferred::Known(t) = &recv
            && let Shape::Iter(item) = self.index().shape(t)
            && self.index().is_random_hash(&item)
        {
            self.flag_hash_order(span, &format!(" (`.{method}()`)"), &m.receiver, &recv);
        }
        let user_method = match &recv {
            Inferred::Known(t) => matches!(self.index().shape(t), Shape::Other),
            _ => true,
        };
        if user_method {
            self.check_generic_args(span, &method, m.args.iter());
        }
        if let Some(t) = &m.turbofish {
            self.visit_angle_bracketed_generic_arguments(t);
        }
        let params = self.infer.closure_params(&recv, &method);
        self.visit_args(&m.args, &params);
    }

    fn visit_expr_call(&mut self, c: &'ast syn::ExprCall) {
        self.visit_expr(&c.func);
        if let Expr::Path(p) = &*c.func {
            let segs = segments(&p.path);
            let last = segs.last().cloned().unwrap_or_default();
            let readings = self.index().readings(&segs, true);
            let span = p.path.span();
            let builds_btree = segs.iter().any(|s| s == "BTreeMap" || s == "BTreeSet");
            if POINTER_METHODS.contains(&last.as_str()) {
                self.flag(
                    span,
                    format!(
                        "raw pointers (`{}`): memory addresses differ between replicas",
                        segs.join("::")
                    ),
                );
            }
            self.check_generic_args(span, &last, c.args.iter());
            if (HASH_ORDER_METHODS.contains(&last.as_str())
                || ITERATING_CONSUMERS.contains(&last.as_str()))
                && !builds_btree
            {
                for a in &c.args {
                    let v = self.infer.expr(a);
                    if self.index().is_hash_value(&v) {
                        self.flag_hash_order(span, &format!(" (`{}`)", segs.join("::")), a, &v);
                    }
                }
            }
            let serializer = readings.iter().any(|r| {
                r.first()
                    .is_some_and(|c| SERIALIZER_CRATES.contains(&c.as_str()))
                    || r.last().is_some_and(|l| l == "serialize")
            });
            if serializer {
                for a in &c.args {
                    if self.index().holds_hash(&self.infer.expr(a)) {
                        self.flag(
                            span,
                            format!(
                                "serializing `{}` (`{}`), which holds a HashMap/HashSet, writes its entries in a random order; {HASH_FIX}",
                                subject(a),
                                segs.join("::")
                            ),
                        );
                    }
                }
            }
        }
        self.visit_args(&c.args, &[]);
    }

    fn visit_type_ptr(&mut self, t: &'ast syn::TypePtr) {
        self.flag(
            t.star_token.span,
            "raw pointers (a `*const`/`*mut` type): memory addresses differ between replicas",
        );
        visit::visit_type_ptr(self, t);
    }

    fn visit_expr_cast(&mut self, c: &'ast syn::ExprCast) {
        let to_integer = matches!(&*c.ty, Type::Path(p) if p.path.get_ident().is_some_and(|i| INTEGER_TYPES.contains(&i.to_string().as_str())));
        if to_integer && self.is_pointerish(&c.expr) {
            self.flag(
                c.as_token.span,
                "a pointer-to-integer cast exposes a memory address, which differs between replicas",
            );
        }
        visit::visit_expr_cast(self, c);
    }

    fn visit_item_macro(&mut self, m: &'ast syn::ItemMacro) {
        if m.ident.is_some() {
            // A `macro_rules!` definition: its body cannot be parsed as
            // code, so it is scanned.
            self.scan_tokens(&m.mac.tokens);
        } else {
            self.visit_macro(&m.mac);
        }
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        let segs = segments(&m.path);
        let span = m.path.span();
        self.check_path(span, &segs, true);
        let readings = self.index().readings(&segs, false);
        let names: BTreeSet<String> = readings.iter().filter_map(|r| r.last().cloned()).collect();
        if let Some(name) = names.iter().find(|n| STATIC_MACROS.contains(&n.as_str())) {
            self.flag(span, format!("static mutable state (`{name}!`)"));
        }
        if names.iter().any(|n| POINTER_MACROS.contains(&n.as_str())) {
            self.flag(
                span,
                "raw pointers (`addr_of!`): memory addresses differ between replicas",
            );
        }
        if names.contains("include") {
            self.flag(span, "code pulled in with `include!` is not checked");
        }
        let args = macro_args::parse(&m.tokens);
        for s in &args.stmts {
            self.visit_stmt(s);
        }
        for a in &args.args {
            self.visit_expr(&a.expr);
        }
        for u in &args.unparsed {
            self.scan_tokens(u);
        }
        let name = segs.last().cloned().unwrap_or_default();
        for a in &args.args {
            let debugged = a.debug || name == "dbg";
            if debugged && self.index().holds_hash(&self.infer.expr(&a.expr)) {
                self.flag_debug(a.expr.span(), &a.expr);
            }
        }
        self.check_format(&name, &args.args);
    }
}
