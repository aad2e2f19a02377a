//! Exact numbers for the verifier: rationals with `i64` parts ([`Num`]) and linear forms
//! `a·x + b` in the reverse-mode unknown ([`Lin`]).
//!
//! Exact arithmetic is what lets the verifier say "2.5 is not 2" and "7 / 2 is not 3": nothing
//! is ever rounded or truncated. Every operation is checked; `None` means overflow, division by
//! zero or (for [`Lin`]) a product that is not linear in x. The integer fast path (denominator
//! 1, the only case in well-formed traces) costs one checked add or multiply.

use std::fmt;

/// An exact rational number, always normalised (denominator > 0, lowest terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Num {
    n: i64,
    d: i64,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

impl Num {
    pub const ZERO: Num = Num { n: 0, d: 1 };
    pub const ONE: Num = Num { n: 1, d: 1 };

    /// The integer `v`.
    #[inline]
    pub const fn int(v: i64) -> Num {
        Num { n: v, d: 1 }
    }

    /// `n / d` in lowest terms; `None` when `d` is 0 or the result does not fit.
    #[inline]
    pub fn ratio(n: i64, d: i64) -> Option<Num> {
        Num::from_i128(n as i128, d as i128)
    }

    fn from_i128(mut n: i128, mut d: i128) -> Option<Num> {
        if d == 0 {
            return None;
        }
        if d < 0 {
            n = -n;
            d = -d;
        }
        if d != 1 {
            let g = gcd(n, d);
            if g > 1 {
                n /= g;
                d /= g;
            }
        }
        Some(Num {
            n: i64::try_from(n).ok()?,
            d: i64::try_from(d).ok()?,
        })
    }

    #[inline]
    pub fn numer(self) -> i64 {
        self.n
    }

    #[inline]
    pub fn denom(self) -> i64 {
        self.d
    }

    /// The value as an integer, if it is one.
    #[inline]
    pub fn as_int(self) -> Option<i64> {
        (self.d == 1).then_some(self.n)
    }

    #[inline]
    pub fn is_zero(self) -> bool {
        self.n == 0
    }

    #[inline]
    pub fn checked_add(self, o: Num) -> Option<Num> {
        if self.d == 1 && o.d == 1 {
            return self.n.checked_add(o.n).map(Num::int);
        }
        self.add_fractions(o)
    }

    #[inline(never)]
    fn add_fractions(self, o: Num) -> Option<Num> {
        let (a, b, c, d) = (self.n as i128, self.d as i128, o.n as i128, o.d as i128);
        Num::from_i128(a * d + c * b, b * d)
    }

    #[inline]
    pub fn checked_neg(self) -> Option<Num> {
        Some(Num {
            n: self.n.checked_neg()?,
            d: self.d,
        })
    }

    #[inline]
    pub fn checked_sub(self, o: Num) -> Option<Num> {
        if self.d == 1 && o.d == 1 {
            return self.n.checked_sub(o.n).map(Num::int);
        }
        self.checked_add(o.checked_neg()?)
    }

    #[inline]
    pub fn checked_mul(self, o: Num) -> Option<Num> {
        if self.d == 1 && o.d == 1 {
            return self.n.checked_mul(o.n).map(Num::int);
        }
        Num::from_i128(self.n as i128 * o.n as i128, self.d as i128 * o.d as i128)
    }

    #[inline]
    pub fn checked_div(self, o: Num) -> Option<Num> {
        // Exact integer quotients without 128-bit division. `checked_rem` is `None` for a
        // zero divisor and for `i64::MIN % -1`; both go the general way (and fail there).
        if self.d == 1 && o.d == 1 && self.n.checked_rem(o.n) == Some(0) {
            return self.n.checked_div(o.n).map(Num::int);
        }
        self.div_general(o)
    }

    #[inline(never)]
    fn div_general(self, o: Num) -> Option<Num> {
        Num::from_i128(self.n as i128 * o.d as i128, self.d as i128 * o.n as i128)
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.d == 1 {
            write!(f, "{}", self.n)
        } else {
            write!(f, "{}/{}", self.n, self.d)
        }
    }
}

/// A linear form `a·x + b` in the reverse-mode unknown x (`a` is 0 for plain numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lin {
    pub a: Num,
    pub b: Num,
}

impl Lin {
    /// The unknown x itself.
    pub const X: Lin = Lin {
        a: Num::ONE,
        b: Num::ZERO,
    };

    /// A plain number.
    #[inline]
    pub const fn num(b: Num) -> Lin {
        Lin { a: Num::ZERO, b }
    }

    /// Whether the form does not depend on x.
    #[inline]
    pub fn is_const(self) -> bool {
        self.a.is_zero()
    }

    /// The value at `x`.
    #[inline]
    pub fn eval(self, x: Num) -> Option<Num> {
        self.a.checked_mul(x)?.checked_add(self.b)
    }

    #[inline]
    pub fn checked_add(self, o: Lin) -> Option<Lin> {
        Some(Lin {
            a: self.a.checked_add(o.a)?,
            b: self.b.checked_add(o.b)?,
        })
    }

    #[inline]
    pub fn checked_sub(self, o: Lin) -> Option<Lin> {
        Some(Lin {
            a: self.a.checked_sub(o.a)?,
            b: self.b.checked_sub(o.b)?,
        })
    }

    #[inline]
    pub fn checked_neg(self) -> Option<Lin> {
        Some(Lin {
            a: self.a.checked_neg()?,
            b: self.b.checked_neg()?,
        })
    }

    #[inline]
    fn scale(self, k: Num) -> Option<Lin> {
        Some(Lin {
            a: self.a.checked_mul(k)?,
            b: self.b.checked_mul(k)?,
        })
    }

    /// The product, when one side is a plain number (otherwise it is not linear).
    #[inline]
    pub fn checked_mul(self, o: Lin) -> Option<Lin> {
        if self.is_const() {
            o.scale(self.b)
        } else if o.is_const() {
            self.scale(o.b)
        } else {
            None
        }
    }

    /// The quotient by a non-zero plain number.
    #[inline]
    pub fn checked_div(self, o: Lin) -> Option<Lin> {
        if !o.is_const() || o.b.is_zero() {
            return None;
        }
        Some(Lin {
            a: self.a.checked_div(o.b)?,
            b: self.b.checked_div(o.b)?,
        })
    }

    /// The root of `self = 0`, if there is exactly one.
    #[inline]
    pub fn root(self) -> Option<Num> {
        if self.a.is_zero() {
            return None;
        }
        self.b.checked_neg()?.checked_div(self.a)
    }
}

impl fmt::Display for Lin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.a.is_zero() {
            return write!(f, "{}", self.b);
        }
        write!(f, "{}*x", self.a)?;
        if !self.b.is_zero() {
            write!(f, " + {}", self.b)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rationals_are_exact_and_normalised() {
        let half = Num::ratio(5, 10).unwrap();
        assert_eq!(half, Num::ratio(-1, -2).unwrap());
        assert_eq!(half.checked_add(half), Some(Num::ONE));
        assert_eq!(Num::int(7).checked_div(Num::int(2)).unwrap().as_int(), None);
        assert_eq!(Num::int(-6).checked_div(Num::int(-2)), Some(Num::int(3)));
        assert_eq!(Num::int(1).checked_div(Num::ZERO), None);
        assert_eq!(Num::int(i64::MAX).checked_add(Num::ONE), None);
        assert_eq!(Num::int(i64::MIN).checked_neg(), None);
    }

    /// The integer quotient shortcut agrees with the general rational division.
    #[test]
    fn integer_division_shortcut() {
        let vals = [
            0,
            1,
            -1,
            2,
            -2,
            3,
            -3,
            6,
            -6,
            7,
            -7,
            i64::MAX,
            i64::MAX - 1,
            i64::MIN,
            i64::MIN + 1,
            i64::MIN / 2,
            1 << 32,
        ];
        for &a in &vals {
            for &b in &vals {
                let (x, y) = (Num::int(a), Num::int(b));
                assert_eq!(x.checked_div(y), x.div_general(y), "{a} / {b}");
            }
        }
        let half = Num::ratio(1, 2).unwrap();
        assert_eq!(half.checked_div(half), Some(Num::ONE));
        assert_eq!(Num::int(3).checked_div(half), Some(Num::int(6)));
    }

    #[test]
    fn linear_forms() {
        let f = Lin::X
            .checked_mul(Lin::num(Num::int(2)))
            .unwrap()
            .checked_add(Lin::num(Num::int(10)))
            .unwrap();
        assert_eq!(f.eval(Num::int(3)), Some(Num::int(16)));
        assert_eq!(Lin::X.checked_mul(Lin::X), None);
        assert_eq!(
            f.checked_sub(Lin::num(Num::int(16))).unwrap().root(),
            Some(Num::int(3))
        );
        assert_eq!(f.to_string(), "2*x + 10");
    }
}
