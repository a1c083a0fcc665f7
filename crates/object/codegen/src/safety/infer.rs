//! Expression typing for the checker: local variables in scope (so that a
//! `BTreeMap` local named like a `HashMap` field is a `BTreeMap`), the types
//! of fields, method results, calls and pattern bindings, as far as the
//! source shows them. See [`super::types`] for why unknown types derived from
//! a hash collection count as hash collections.

use super::hazards::{POINTER_MACROS, POINTER_METHODS};
use super::resolve::{CrateIndex, segments, type_name};
use super::types::{Inferred, Shape, entry_of, iter_of, option_of};
use std::collections::BTreeMap;
use syn::{Expr, Pat, Type, parse_quote};

/// Methods whose result holds nothing of the receiver's elements.
const SCALAR_METHODS: &[&str] = &[
    "len",
    "is_empty",
    "contains",
    "contains_key",
    "is_some",
    "is_none",
    "is_ok",
    "is_err",
    "count",
    "eq",
    "ne",
    "cmp",
    "partial_cmp",
    "capacity",
    "is_subset",
    "is_superset",
    "is_disjoint",
    "any",
    "all",
    "position",
    "hash",
];

/// Methods that return the receiver's own type (through auto-deref).
const TRANSPARENT_METHODS: &[&str] = &[
    "unwrap",
    "expect",
    "clone",
    "to_owned",
    "borrow",
    "borrow_mut",
    "as_ref",
    "as_mut",
    "deref",
    "deref_mut",
    "by_ref",
    "as_deref",
    "as_deref_mut",
];

/// Iterator adaptors that keep the items as they are.
const ITER_KEEPS_ITEMS: &[&str] = &[
    "filter",
    "skip",
    "take",
    "rev",
    "skip_while",
    "take_while",
    "peekable",
    "fuse",
    "inspect",
    "by_ref",
    "step_by",
    "chain",
    "cycle",
    "cloned",
    "copied",
    "clone",
];

/// Iterator methods that return one item.
const ITER_ONE_ITEM: &[&str] = &[
    "next",
    "last",
    "nth",
    "min",
    "max",
    "min_by_key",
    "max_by_key",
    "min_by",
    "max_by",
    "find",
    "next_back",
    "reduce",
];

/// Names bound in nested scopes, innermost last.
#[derive(Default)]
pub struct Scopes(Vec<BTreeMap<String, Inferred>>);

impl Scopes {
    /// Opens a scope.
    pub fn push(&mut self) {
        self.0.push(BTreeMap::new());
    }

    /// Closes the innermost scope.
    pub fn pop(&mut self) {
        self.0.pop();
    }

    /// Binds `name` in the innermost scope.
    pub fn bind(&mut self, name: String, v: Inferred) {
        if self.0.is_empty() {
            self.push();
        }
        if let Some(scope) = self.0.last_mut() {
            scope.insert(name, v);
        }
    }

    /// What `name` is bound to, innermost first.
    pub fn lookup(&self, name: &str) -> Option<&Inferred> {
        self.0.iter().rev().find_map(|s| s.get(name))
    }
}

/// Typing context: the crate, the variables in scope, and `Self`.
pub struct Infer<'a> {
    /// The crate's declarations.
    pub index: &'a CrateIndex,
    /// Variables in scope.
    pub scopes: Scopes,
    /// The type of the `impl` being checked.
    pub self_ty: Option<Type>,
}

impl Infer<'_> {
    /// What is known of `e`'s type.
    pub fn expr(&self, e: &Expr) -> Inferred {
        match e {
            Expr::Path(p) => self.path(p),
            Expr::Field(f) => self.field(&self.expr(&f.base), &f.member),
            Expr::Reference(r) => self.expr(&r.expr),
            Expr::Paren(p) => self.expr(&p.expr),
            Expr::Group(g) => self.expr(&g.expr),
            Expr::Unary(u) if matches!(u.op, syn::UnOp::Deref(_)) => self.expr(&u.expr),
            Expr::Try(t) => self.unwrapped(self.expr(&t.expr)),
            Expr::MethodCall(m) => {
                let turbofish = m.turbofish.as_ref().and_then(|t| {
                    t.args.iter().find_map(|a| match a {
                        syn::GenericArgument::Type(t) => Some(t.clone()),
                        _ => None,
                    })
                });
                self.method(&self.expr(&m.receiver), &m.method.to_string(), turbofish)
            }
            Expr::Call(c) => self.call(c),
            Expr::Struct(s) => Inferred::Known(Type::Path(syn::TypePath {
                qself: None,
                path: s.path.clone(),
            })),
            Expr::Cast(c) => Inferred::Known((*c.ty).clone()),
            Expr::Index(i) => {
                let base = self.expr(&i.expr);
                match &base {
                    Inferred::Known(t) => match self.index.shape(t) {
                        Shape::Map(_, v) => Inferred::Known(v),
                        Shape::Seq(t) => Inferred::Known(t),
                        _ => self.index.lost(&base),
                    },
                    _ => self.index.lost(&base),
                }
            }
            Expr::Block(b) => self.tail(&b.block),
            Expr::Unsafe(b) => self.tail(&b.block),
            Expr::If(i) => self.tail(&i.then_branch),
            Expr::Match(m) => m
                .arms
                .first()
                .map_or(Inferred::Unknown, |a| self.expr(&a.body)),
            Expr::Macro(m) => {
                let name = m.mac.path.segments.last().map(|s| s.ident.to_string());
                match name.as_deref() {
                    Some("hashmap") => Inferred::Known(parse_quote!(HashMap<_, _>)),
                    Some("hashset") => Inferred::Known(parse_quote!(HashSet<_>)),
                    Some(m) if POINTER_MACROS.contains(&m) => {
                        Inferred::Known(parse_quote!(*const ()))
                    }
                    _ => Inferred::Unknown,
                }
            }
            _ => Inferred::Unknown,
        }
    }

    fn tail(&self, b: &syn::Block) -> Inferred {
        match b.stmts.last() {
            Some(syn::Stmt::Expr(e, None)) => self.expr(e),
            _ => Inferred::Unknown,
        }
    }

    fn path(&self, p: &syn::ExprPath) -> Inferred {
        if p.qself.is_some() {
            return Inferred::Unknown;
        }
        if let Some(id) = p.path.get_ident() {
            let name = id.to_string();
            if name == "self" {
                return self
                    .scopes
                    .lookup("self")
                    .cloned()
                    .unwrap_or(Inferred::Unknown);
            }
            if let Some(v) = self.scopes.lookup(&name) {
                return v.clone();
            }
        }
        p.path
            .segments
            .last()
            .and_then(|s| self.index.statics.get(&s.ident.to_string()))
            .map_or(Inferred::Unknown, |t| Inferred::Known(t.clone()))
    }

    /// The type of field `member` of a value of type `base`.
    pub fn field(&self, base: &Inferred, member: &syn::Member) -> Inferred {
        let name = match member {
            syn::Member::Named(i) => i.to_string(),
            syn::Member::Unnamed(i) => i.index.to_string(),
        };
        if let Inferred::Known(t) = base {
            let t = self.index.peel(t);
            if let (Type::Tuple(tuple), syn::Member::Unnamed(i)) = (&t, member)
                && let Some(e) = tuple.elems.iter().nth(i.index as usize)
            {
                return Inferred::Known(e.clone());
            }
            if let Some(owner) = type_name(&t)
                && let Some(fields) = self.index.fields.get(&owner)
                && let Some((_, ty)) = fields.iter().find(|(n, _)| *n == name)
            {
                if self.index.generic_field_holds_hash(&owner, ty) {
                    return Inferred::Suspect;
                }
                return Inferred::Known(ty.clone());
            }
        }
        // The base's type is unknown: any field of that name in the crate.
        let hashy = self
            .index
            .fields
            .values()
            .flatten()
            .any(|(n, t)| *n == name && self.index.contains_hash(t));
        if hashy {
            Inferred::Suspect
        } else {
            Inferred::Unknown
        }
    }

    /// `Option<T>`/`Result<T, _>` → `T` (anything else stays).
    fn unwrapped(&self, v: Inferred) -> Inferred {
        match &v {
            Inferred::Known(t) => match self.index.shape(t) {
                Shape::Opt(inner) | Shape::Cell(inner) => Inferred::Known(inner),
                _ => v,
            },
            _ => v,
        }
    }

    /// The return type of the crate's own function or method `name`
    /// (preferring one of `owner`'s).
    fn user_fn(&self, owner: Option<&str>, name: &str) -> Option<Inferred> {
        let candidates = self.index.returns.get(name)?;
        if let Some(owner) = owner
            && let Some((_, t)) = candidates.iter().find(|(o, _)| o.as_deref() == Some(owner))
        {
            return Some(Inferred::Known(t.clone()));
        }
        let first = &candidates.first()?.1;
        if candidates.iter().all(|(_, t)| t == first) {
            Some(Inferred::Known(first.clone()))
        } else if candidates.iter().any(|(_, t)| self.index.contains_hash(t)) {
            Some(Inferred::Suspect)
        } else {
            Some(Inferred::Unknown)
        }
    }

    /// The result of calling `method` on a receiver `recv`.
    pub fn method(&self, recv: &Inferred, method: &str, turbofish: Option<Type>) -> Inferred {
        if let Some(t) = turbofish
            && matches!(method, "collect" | "into" | "parse" | "sum" | "product")
        {
            return Inferred::Known(t);
        }
        if POINTER_METHODS.contains(&method) {
            return Inferred::Known(parse_quote!(*const ()));
        }
        let t = match recv {
            Inferred::Suspect if SCALAR_METHODS.contains(&method) => return Inferred::Unknown,
            Inferred::Suspect => return Inferred::Suspect,
            Inferred::Unknown => {
                return self.user_fn(None, method).unwrap_or(Inferred::Unknown);
            }
            Inferred::Known(t) => self.index.peel(t),
        };
        let known = Inferred::Known;
        let by_shape = match self.index.shape(&t) {
            Shape::Opt(inner) => match method {
                "unwrap" | "expect" | "unwrap_or" | "unwrap_or_default" | "unwrap_or_else"
                | "unwrap_unchecked" | "get_or_insert" | "get_or_insert_with" | "insert" => {
                    Some(known(inner))
                }
                "iter" | "iter_mut" | "into_iter" => Some(known(iter_of(inner))),
                _ => None,
            },
            Shape::Cell(inner) => match method {
                "borrow" | "borrow_mut" | "lock" | "read" | "write" | "get" | "get_mut"
                | "into_inner" | "take" | "get_or_init" | "replace" => Some(known(inner)),
                _ => None,
            },
            Shape::Map(k, v) => match method {
                "get" | "get_mut" | "remove" | "insert" => Some(known(option_of(v))),
                "entry" => Some(known(entry_of(v))),
                "iter" | "iter_mut" | "into_iter" | "drain" | "range" | "range_mut"
                | "extract_if" => Some(known(iter_of(parse_quote!((#k, #v))))),
                "keys" | "into_keys" => Some(known(iter_of(k))),
                "values" | "values_mut" | "into_values" => Some(known(iter_of(v))),
                "first_key_value" | "last_key_value" | "pop_first" | "pop_last"
                | "get_key_value" | "remove_entry" => {
                    Some(known(option_of(parse_quote!((#k, #v)))))
                }
                _ => None,
            },
            Shape::Set(item) => match method {
                "get" | "take" | "first" | "last" | "pop_first" | "pop_last" | "replace" => {
                    Some(known(option_of(item)))
                }
                "iter"
                | "into_iter"
                | "drain"
                | "union"
                | "intersection"
                | "difference"
                | "symmetric_difference"
                | "range"
                | "extract_if" => Some(known(iter_of(item))),
                _ => None,
            },
            Shape::Seq(item) => match method {
                "get" | "get_mut" | "first" | "last" | "first_mut" | "last_mut" | "pop"
                | "pop_front" | "pop_back" | "front" | "back" | "front_mut" | "back_mut"
                | "peek" | "peek_mut" => Some(known(option_of(item))),
                "remove" | "swap_remove" => Some(known(item)),
                "iter" | "iter_mut" | "into_iter" | "drain" => Some(known(iter_of(item))),
                _ => None,
            },
            Shape::Iter(item) => {
                if ITER_KEEPS_ITEMS.contains(&method) {
                    Some(known(iter_of(item)))
                } else if method == "enumerate" {
                    Some(known(iter_of(parse_quote!((usize, #item)))))
                } else if ITER_ONE_ITEM.contains(&method) {
                    Some(known(option_of(item)))
                } else {
                    None
                }
            }
            Shape::Entry(value) => match method {
                "or_insert" | "or_insert_with" | "or_default" | "or_insert_with_key" => {
                    Some(known(value))
                }
                "and_modify" => Some(known(t.clone())),
                _ => None,
            },
            Shape::Other => None,
        };
        if let Some(v) = by_shape {
            return v;
        }
        if TRANSPARENT_METHODS.contains(&method) {
            return Inferred::Known(t);
        }
        if let Some(v) = self.user_fn(type_name(&t).as_deref(), method) {
            return v;
        }
        if SCALAR_METHODS.contains(&method) {
            Inferred::Unknown
        } else {
            self.index.lost(&Inferred::Known(t))
        }
    }

    fn call(&self, c: &syn::ExprCall) -> Inferred {
        let fallback = || {
            if c.args.iter().any(|a| self.index.holds_hash(&self.expr(a))) {
                Inferred::Suspect
            } else {
                Inferred::Unknown
            }
        };
        let Expr::Path(p) = &*c.func else {
            return fallback();
        };
        let segs = segments(&p.path);
        let Some(last) = segs.last().map(String::as_str) else {
            return fallback();
        };
        let first_arg = || c.args.first().map_or(Inferred::Unknown, |a| self.expr(a));
        if segs.len() == 1 {
            return match last {
                "Some" | "Ok" => match first_arg() {
                    Inferred::Known(t) => Inferred::Known(option_of(t)),
                    other => other,
                },
                "take" | "replace" | "identity" => first_arg(),
                name => self.user_fn(None, name).unwrap_or_else(fallback),
            };
        }
        let mut owner_path = p.path.clone();
        owner_path.segments.pop();
        owner_path.segments.pop_punct();
        let owner: Type = Type::Path(syn::TypePath {
            qself: None,
            path: owner_path.clone(),
        });
        let owner_names = self.index.type_names(&owner_path);
        let is = |n: &str| owner_names.iter().any(|o| o == n);
        if is("Box") || is("Rc") || is("Arc") || is("mem") || is("convert") {
            if matches!(last, "new" | "from" | "take" | "replace" | "identity") {
                return first_arg();
            }
            return fallback();
        }
        if is("Self")
            && let Some(self_ty) = &self.self_ty
        {
            return self
                .user_fn(type_name(self_ty).as_deref(), last)
                .unwrap_or_else(fallback);
        }
        let constructor = matches!(
            last,
            "new" | "with_capacity" | "default" | "from" | "from_iter" | "new_in"
        );
        let container =
            self.index.is_random_hash(&owner) || !matches!(self.index.shape(&owner), Shape::Other);
        if constructor && container {
            return Inferred::Known(owner);
        }
        if let Some(owner_name) = owner_names.first()
            && let Some(v) = self.user_fn(Some(owner_name), last)
        {
            return v;
        }
        fallback()
    }

    /// What the closures passed to `method` on `recv` receive, by
    /// parameter.
    pub fn closure_params(&self, recv: &Inferred, method: &str) -> Vec<Inferred> {
        let t = match recv {
            Inferred::Known(t) => t,
            Inferred::Suspect => return vec![Inferred::Suspect, Inferred::Suspect],
            Inferred::Unknown => return Vec::new(),
        };
        let known = Inferred::Known;
        match self.index.shape(t) {
            Shape::Opt(inner) | Shape::Set(inner) | Shape::Cell(inner) | Shape::Entry(inner) => {
                vec![known(inner.clone()), known(inner)]
            }
            Shape::Seq(item) => vec![known(item.clone()), known(item)],
            Shape::Iter(item) if matches!(method, "fold" | "try_fold" | "scan") => {
                vec![Inferred::Unknown, known(item)]
            }
            Shape::Iter(item) => vec![known(item.clone()), known(item)],
            Shape::Map(k, v) => vec![known(k), known(v)],
            Shape::Other => {
                let lost = self.index.lost(recv);
                vec![lost.clone(), lost]
            }
        }
    }

    /// The items a `for` loop over `over` binds.
    pub fn loop_item(&self, over: &Inferred) -> Inferred {
        match over {
            Inferred::Known(t) => self
                .index
                .item_type(t)
                .map_or_else(|| self.index.lost(over), Inferred::Known),
            other => other.clone(),
        }
    }

    /// The element `pick` finds in `v`'s shape, or what is left of `v`.
    fn element(&self, v: &Inferred, pick: impl Fn(Shape) -> Option<Type>) -> Inferred {
        match v {
            Inferred::Known(t) => {
                pick(self.index.shape(t)).map_or_else(|| self.index.lost(v), Inferred::Known)
            }
            _ => self.index.lost(v),
        }
    }

    /// Binds the names of `pat`, matched against a value `v`.
    pub fn bind(&mut self, pat: &Pat, v: Inferred) {
        match pat {
            Pat::Ident(pi) => {
                if let Some((_, sub)) = &pi.subpat {
                    self.bind(sub, v.clone());
                }
                self.scopes.bind(pi.ident.to_string(), v);
            }
            Pat::Type(pt) => self.bind(&pt.pat, Inferred::Known((*pt.ty).clone())),
            Pat::Reference(r) => self.bind(&r.pat, v),
            Pat::Paren(p) => self.bind(&p.pat, v),
            Pat::Tuple(t) => {
                let elems: Vec<Type> = match &v {
                    Inferred::Known(ty) => match self.index.peel(ty) {
                        Type::Tuple(tuple) => tuple.elems.into_iter().collect(),
                        _ => Vec::new(),
                    },
                    _ => Vec::new(),
                };
                for (i, p) in t.elems.iter().enumerate() {
                    let e = elems
                        .get(i)
                        .map_or_else(|| self.index.lost(&v), |t| Inferred::Known(t.clone()));
                    self.bind(p, e);
                }
            }
            Pat::TupleStruct(ts) => {
                let wrapper = ts.path.segments.last().map(|s| s.ident.to_string());
                let inner = match wrapper.as_deref() {
                    Some("Some" | "Ok") => self.element(&v, |s| match s {
                        Shape::Opt(inner) => Some(inner),
                        _ => None,
                    }),
                    _ => self.index.lost(&v),
                };
                for p in &ts.elems {
                    self.bind(p, inner.clone());
                }
            }
            Pat::Struct(ps) => {
                let owner = ps.path.segments.last().map(|s| s.ident.to_string());
                let fields = owner.and_then(|o| self.index.fields.get(&o));
                for fp in &ps.fields {
                    let field_v = match (&fp.member, fields) {
                        (syn::Member::Named(n), Some(fields)) => {
                            fields.iter().find(|(f, _)| n == f).map_or_else(
                                || self.index.lost(&v),
                                |(_, t)| Inferred::Known(t.clone()),
                            )
                        }
                        _ => self.index.lost(&v),
                    };
                    self.bind(&fp.pat, field_v);
                }
            }
            Pat::Slice(s) => {
                let item = self.element(&v, |s| match s {
                    Shape::Seq(item) => Some(item),
                    _ => None,
                });
                for p in &s.elems {
                    self.bind(p, item.clone());
                }
            }
            Pat::Or(o) => {
                for case in &o.cases {
                    self.bind(case, v.clone());
                }
            }
            _ => {}
        }
    }
}
