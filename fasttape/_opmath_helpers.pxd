# C helpers named in the op table's formulas (fasttape/_optable.py), for the few ops
# whose conventions at awkward points do not fit one expression. Each has a Python
# twin of the same name in fasttape/_rules.py (used when a rule is recorded for higher
# order); tests/test_optable.py checks the two against each other.
#
# Every helper follows NumPy's float64 semantics: IEEE results, no exceptions (log(-1)
# is nan, 1/0 is inf), NaN propagates.

from libc cimport math as cm


cdef inline double times(double partial, double tangent) noexcept nogil:
    # a tangent term partial * tangent; a zero tangent counts 0 (also against an
    # infinite or nan partial), as a zero adjoint does in the reverse sweep
    return partial * tangent if tangent != 0.0 else 0.0


cdef inline double curvature(double second, double tangent) noexcept nogil:
    # a second-derivative term: 0 when either factor is 0, so that a zero tangent (or a
    # zero second derivative) meeting an infinite one counts 0, not nan, as a zero
    # adjoint does in the first-order sweeps (sqrt at 0 next to a linear term; d2/dadb
    # of a ** c, nan for a < 0, with the exponent constant)
    return second * tangent if second != 0.0 and tangent != 0.0 else 0.0


cdef inline void put(double* gx, Py_ssize_t k, double d, bint assign) noexcept nogil:
    # One store, no branch: gcc 12 does not vectorise a loop with a branch around the
    # store (and an if/else store here kept unary_reverse's loops scalar), while this
    # form it splits into two vectorised versions by the loop-invariant `assign`.
    # -0.0 + d is d exactly (also for d = -0.0 and nan), so assign writes d.
    gx[k] = (-0.0 if assign else gx[k]) + d

cdef inline double sign(double x) noexcept nogil:
    # np.sign: -1, 0 or 1; nan stays nan
    if x > 0:
        return 1.0
    if x < 0:
        return -1.0
    return x          # 0.0, -0.0 or nan


cdef inline double sigmoid(double x) noexcept nogil:
    # 1 / (1 + exp(-x)), written so that neither branch overflows
    cdef double z
    if x >= 0:
        return 1.0 / (1.0 + cm.exp(-x))
    z = cm.exp(x)
    return z / (1.0 + z)


cdef inline double logaddexp(double a, double b) noexcept nogil:
    # log(exp(a) + exp(b)) = max + log1p(exp(-|a - b|)); equal infinities give that
    # infinity (np.logaddexp(inf, inf) == inf, not nan)
    cdef double m
    if a == b:
        return a + cm.M_LN2
    m = a if a > b else b
    if a != a or b != b:
        return a + b   # nan
    return m + cm.log1p(cm.exp(-cm.fabs(a - b)))


cdef inline double maximum(double a, double b) noexcept nogil:
    # np.maximum: nan if either operand is nan
    if a != a:
        return a
    if b != b:
        return b
    return a if a >= b else b


cdef inline double minimum(double a, double b) noexcept nogil:
    if a != a:
        return a
    if b != b:
        return b
    return a if a <= b else b


cdef inline double remainder(double a, double b) noexcept nogil:
    # np.remainder: a - floor(a / b) b, computed as NumPy does (from fmod, then moved
    # to the sign of b; a zero result takes b's sign)
    cdef double r
    if b == 0.0:
        return cm.fmod(a, b)          # nan
    r = cm.fmod(a, b)
    if r != 0.0:
        if (b < 0.0) != (r < 0.0):
            r += b
    else:
        r = cm.copysign(0.0, b)
    return r


cdef inline double logaddexp2(double a, double b) noexcept nogil:
    # log2(2^a + 2^b) = max + log2(1 + 2^-|a - b|); equal infinities give that infinity
    if a == b:
        return a + 1.0
    if a != a or b != b:
        return a + b   # nan
    return (a if a > b else b) + cm.log1p(cm.exp2(-cm.fabs(a - b))) / cm.M_LN2


cdef inline double sinc(double x) noexcept nogil:
    # np.sinc: sin(pi x) / (pi x), 1 at 0
    cdef double px
    if x == 0.0:
        return 1.0
    px = cm.M_PI * x
    return cm.sin(px) / px


cdef inline double sinc_derivative(double x, double y) noexcept nogil:
    # (cos(pi x) - sinc x) / x, y = sinc x; 0 at 0 (sinc is even)
    if x == 0.0:
        return 0.0
    return (cm.cos(cm.M_PI * x) - y) / x


cdef inline double sinc_second(double x, double y) noexcept nogil:
    # (-pi^2 x^2 y - 2 (cos(pi x) - y)) / x^2; -pi^2/3 at 0
    if x == 0.0:
        return -cm.M_PI * cm.M_PI / 3.0
    return (-cm.M_PI * cm.M_PI * x * x * y - 2.0 * (cm.cos(cm.M_PI * x) - y)) / (x * x)



# -- pow: autograd's conventions at a base or an exponent of 0 -------------------------

cdef inline double small_pow(double x, double p) noexcept nogil:
    # x^p for the derivatives of pow: by multiplication at the exponents 0 ... 3 that
    # x**2, x**3, x**4 need (libm's pow, ~20 ns a call, was most of a Hessian-vector
    # product of such code); within a rounding or two of pow elsewhere alike
    if p == 0.0:
        return 1.0
    if p == 1.0:
        return x
    if p == 2.0:
        return x * x
    if p == 3.0:
        return x * x * x
    return cm.pow(x, p)


cdef inline double pow_dbase(double x, double p) noexcept nogil:
    # d(x^p)/dx = p x^(p-1). At p == 0 it is 0 for every x (autograd writes
    # x^where(p, p-1, 1) so that 0^-1 never appears).
    if p == 0.0:
        return 0.0
    return p * small_pow(x, p - 1.0)


cdef inline double pow_dexponent(double x, double y) noexcept nogil:
    # d(x^p)/dp = log(x) x^p = log(x) y; at x == 0 it is 0 (log(0) * 0 would be nan;
    # autograd replaces x == 0 by 1 inside the log)
    if x == 0.0:
        return 0.0
    return cm.log(x) * y


cdef inline double pow_dbase_dbase(double x, double p) noexcept nogil:
    # p (p - 1) x^(p-2); 0 where p is 0 or 1 (the first partial is constant there)
    if p == 0.0 or p == 1.0:
        return 0.0
    return p * (p - 1.0) * small_pow(x, p - 2.0)


cdef inline double pow_dbase_dexponent(double x, double p) noexcept nogil:
    # x^(p-1) (1 + p log x); at x == 0: 1 where p == 1, else 0 (pow_dexponent is 0 at
    # x == 0)
    if x != 0.0:
        return cm.pow(x, p - 1.0) * (1.0 + p * cm.log(x))
    return 1.0 if p == 1.0 else 0.0


cdef inline double pow_dexponent_dexponent(double x, double y) noexcept nogil:
    # log(x)^2 x^p = log(x)^2 y; 0 at x == 0
    if x == 0.0:
        return 0.0
    return cm.log(x) * cm.log(x) * y


# -- partials computed in pairs --------------------------------------------------------

cdef inline void arctan2_partials(double a, double b, double y,
                                  double* da, double* db) noexcept nogil:
    # atan2(a, b): (b, -a) / (a^2 + b^2), nan at the origin; divided by hypot twice so
    # that a^2 + b^2 cannot overflow
    cdef double d = cm.hypot(a, b)
    da[0] = b / d / d
    db[0] = -a / d / d


cdef inline double arctan2_daa(double a, double b) noexcept nogil:
    # d2/da2 atan2(a, b) = -2ab / (a^2 + b^2)^2; d2/db2 is its negative
    cdef double d = a * a + b * b
    return -2.0 * a * b / (d * d)


cdef inline double arctan2_dab(double a, double b) noexcept nogil:
    # d2/dadb atan2(a, b) = (a^2 - b^2) / (a^2 + b^2)^2
    cdef double d = a * a + b * b
    return (a * a - b * b) / (d * d)


cdef inline void selection_partials(double a, double b, double y,
                                    double* da, double* db) noexcept nogil:
    # maximum/minimum: to the operand equal to the result; a tie splits evenly
    # (autograd's balanced_eq); a nan operand gives nan
    if a == y and b == y:
        da[0] = 0.5
        db[0] = 0.5
    elif a == y:
        da[0] = 1.0
        db[0] = 0.0
    elif b == y:
        da[0] = 0.0
        db[0] = 1.0
    else:
        da[0] = cm.NAN
        db[0] = cm.NAN


cdef inline void logaddexp_partials(double a, double b, double y,
                                    double* da, double* db) noexcept nogil:
    # softmax weights exp(a - y) = sigmoid(a - b), from the difference (exp(a - y)
    # loses precision for large y); equal arguments (infinities included) share evenly
    if a == b:
        da[0] = 0.5
        db[0] = 0.5
    else:
        da[0] = sigmoid(a - b)
        db[0] = sigmoid(b - a)


cdef inline void logaddexp2_partials(double a, double b, double y,
                                     double* da, double* db) noexcept nogil:
    # 2^(a - y) = sigmoid(ln2 (a - b)): logaddexp's weights at (ln2 a, ln2 b)
    logaddexp_partials(cm.M_LN2 * a, cm.M_LN2 * b, y, da, db)


cdef inline double logaddexp_second(double a, double b) noexcept nogil:
    # s (1 - s) with s = sigmoid(a - b): d2/da2 = d2/db2 = -d2/dadb
    cdef double s = 0.5 if a == b else sigmoid(a - b)
    return s * (1.0 - s)



# -- SciPy's special functions (scipy.special.cython_special: nogil C, the same code as
# the scipy.special ufuncs, so that scalars and arrays agree to the last bit) ----------

from scipy.special cimport cython_special as sc


cdef inline double gamma(double x) noexcept nogil:
    return sc.gamma(x)


cdef inline double gammaln(double x) noexcept nogil:
    # log|Gamma(x)|; inf at the poles 0, -1, -2, ...
    return sc.gammaln(x)


cdef inline double rgamma(double x) noexcept nogil:
    # 1 / Gamma(x); 0 at the poles
    return sc.rgamma(x)


cdef inline double gammasgn(double x) noexcept nogil:
    return sc.gammasgn(x)


cdef inline double digamma(double x) noexcept nogil:
    # psi(x) = d/dx log Gamma(x); nan at the poles (SciPy's convention; -inf at 0)
    return sc.psi(x)


cdef inline double digamma_series(double x) noexcept nogil:
    # psi(x) for the derivatives of gammaln, gamma and rgamma, ~1.8x faster than
    # SciPy's psi (measured on 10^6 values in (0.1, 20)), within 6e-15 of it
    # (relative): for 0 < x < 6, psi(x) = psi(x + 6) - sum_{k<6} 1/(x + k), the sum as
    # one fraction N/D built up term by term (one division); at y >= 6 the asymptotic
    # series log y - 1/(2y) - sum_k B_2k / (2k y^2k), terms to B_22 (the first omitted
    # below 1e-16). Near the positive root 1.4616... (where the subtraction loses
    # relative accuracy), below 0 (reflection) and at the poles: SciPy's psi.
    cdef double n, d, y = x, s = 0.0, r, r2
    cdef int k
    if not (x > 0.0) or cm.fabs(x - 1.4616321449683622) < 0.25:
        return sc.psi(x)
    if x < 6.0:
        n = 1.0
        d = x
        for k in range(1, 6):
            n = n * (x + k) + d
            d = d * (x + k)
        s = n / d
        y = x + 6.0
    r = 1.0 / y
    r2 = r * r
    return cm.log(y) - 0.5 * r - s - r2 * (1.0 / 12.0 + r2 * (-1.0 / 120.0 + r2 * (
        1.0 / 252.0 + r2 * (-1.0 / 240.0 + r2 * (1.0 / 132.0 + r2 * (
            -691.0 / 32760.0 + r2 * (1.0 / 12.0 + r2 * (-3617.0 / 8160.0 + r2 * (
                43867.0 / 14364.0 + r2 * (-174611.0 / 6600.0 + r2 * (
                    77683.0 / 276.0)))))))))))


cdef inline double trigamma(double x) noexcept nogil:
    # psi'(x) = sum_k 1/(x + k)^2 (SciPy's polygamma(1, x)). Below 0 by the reflection
    # psi'(x) + psi'(1 - x) = pi^2 / sin^2(pi x) (inf at the poles). For 0 < x < 6,
    # psi'(x) = psi'(x + 6) + sum_{k<6} 1/(x + k)^2, the sum as -(N/D)' with N/D the
    # fraction of digamma_series and its derivative carried along (one division);
    # at y >= 6 the asymptotic series 1/y + 1/(2y^2) + sum_k B_2k / y^(2k+1), terms
    # to B_26 (within 1e-14 of SciPy's, relative).
    cdef double n, d, dn, dd, y = x, s = 0.0, r, r2
    cdef int k
    if x != x:
        return x
    if x <= 0.0:
        if x == cm.floor(x):
            return cm.INFINITY
        r = cm.sin(cm.M_PI * x)
        return cm.M_PI * cm.M_PI / (r * r) - trigamma(1.0 - x)
    if x < 6.0:
        n = 1.0
        d = x
        dn = 0.0
        dd = 1.0
        for k in range(1, 6):
            dn = dn * (x + k) + n + dd
            n = n * (x + k) + d
            dd = dd * (x + k) + d
            d = d * (x + k)
        s = (n * dd - dn * d) / (d * d)
        y = x + 6.0
    r = 1.0 / y
    r2 = r * r
    return s + r + 0.5 * r2 + r2 * r * (1.0 / 6.0 + r2 * (-1.0 / 30.0 + r2 * (
        1.0 / 42.0 + r2 * (-1.0 / 30.0 + r2 * (5.0 / 66.0 + r2 * (
            -691.0 / 2730.0 + r2 * (7.0 / 6.0 + r2 * (-3617.0 / 510.0 + r2 * (
                43867.0 / 798.0 + r2 * (-174611.0 / 330.0 + r2 * (
                    854513.0 / 138.0 + r2 * (-236364091.0 / 2730.0 + r2 * (
                        8553103.0 / 6.0)))))))))))))


cdef inline double tetragamma(double x) noexcept nogil:
    # psi''(x) = -2 sum_k 1/(x + k)^3 (SciPy's polygamma(2, x)). Below 0 by the
    # reflection psi''(x) = psi''(1 - x) - 2 pi^3 cos(pi x) / sin^3(pi x) (nan at the
    # poles, where the two sides' limits are -inf and +inf); up to x >= 10 by
    # psi''(x) = psi''(x + 1) - 2/x^3; there the asymptotic series
    # -1/x^2 - 1/x^3 - sum_k (2k + 1) B_2k / x^(2k+2).
    cdef double s, acc = 0.0, r
    if x != x:
        return x
    if x <= 0.0:
        if x == cm.floor(x):
            return cm.NAN
        s = cm.sin(cm.M_PI * x)
        return tetragamma(1.0 - x) - 2.0 * cm.M_PI * cm.M_PI * cm.M_PI * \
            cm.cos(cm.M_PI * x) / (s * s * s)
    while x < 10.0:
        acc -= 2.0 / (x * x * x)
        x += 1.0
    r = 1.0 / (x * x)
    return acc - r - r / x - r * r * (0.5 + r * (-1.0 / 6.0 + r * (1.0 / 6.0 + r * (
        -3.0 / 10.0 + r * (5.0 / 6.0 + r * (-691.0 / 210.0))))))


cdef inline double erfc(double x) noexcept nogil:
    return sc.erfc(x)


cdef inline double erfinv(double x) noexcept nogil:
    return sc.erfinv(x)


cdef inline double erfcinv(double x) noexcept nogil:
    return sc.erfcinv(x)


cdef inline double logit(double x) noexcept nogil:
    return sc.logit(x)


cdef inline double i0(double x) noexcept nogil:
    return sc.i0(x)


cdef inline double i1(double x) noexcept nogil:
    return sc.i1(x)


cdef inline double j0(double x) noexcept nogil:
    return sc.j0(x)


cdef inline double j1(double x) noexcept nogil:
    return sc.j1(x)


cdef inline double y0(double x) noexcept nogil:
    return sc.y0(x)


cdef inline double y1(double x) noexcept nogil:
    return sc.y1(x)


cdef inline double i1_derivative(double x) noexcept nogil:
    # I1'(x) = I0(x) - I1(x)/x; 1/2 at 0
    if x == 0.0:
        return 0.5
    return sc.i0(x) - sc.i1(x) / x


cdef inline double i1_second(double x) noexcept nogil:
    # I1''(x) = I1(x) - I0(x)/x + 2 I1(x)/x^2; 0 at 0 (I1 is odd). Near 0 the terms
    # cancel, so there the series x (3/8 + 5 x^2/96) (error below 1e-10 relative at
    # |x| < 1e-2).
    if cm.fabs(x) < 1e-2:
        return x * (0.375 + x * x * 5.0 / 96.0)
    return sc.i1(x) - sc.i0(x) / x + 2.0 * sc.i1(x) / (x * x)


cdef inline double j1_derivative(double x) noexcept nogil:
    # J1'(x) = J0(x) - J1(x)/x; 1/2 at 0
    if x == 0.0:
        return 0.5
    return sc.j0(x) - sc.j1(x) / x


cdef inline double j1_second(double x) noexcept nogil:
    # J1''(x) = -J1(x) - J0(x)/x + 2 J1(x)/x^2; near 0 the series -x (3/8 - 5 x^2/96)
    if cm.fabs(x) < 1e-2:
        return -x * (0.375 - x * x * 5.0 / 96.0)
    return -sc.j1(x) - sc.j0(x) / x + 2.0 * sc.j1(x) / (x * x)
