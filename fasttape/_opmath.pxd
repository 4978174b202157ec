# Forward formulas of the scalar ops, shared by recording (where the op is a
# compile-time constant and the switch folds away) and by sweeps that re-evaluate
# nodes. Every formula follows NumPy's float64 semantics: IEEE results, no
# exceptions (log(-1) is nan, 1/0 is inf), NaN propagates.

from libc cimport math as cm

from fasttape._tape cimport *


cdef inline double sign_c(double x) noexcept nogil:
    # np.sign: -1, 0 or 1; nan stays nan
    if x > 0:
        return 1.0
    if x < 0:
        return -1.0
    return x          # 0.0, -0.0 or nan


cdef inline double sigmoid_c(double x) noexcept nogil:
    # 1 / (1 + exp(-x)), written so that neither branch overflows
    cdef double z
    if x >= 0:
        return 1.0 / (1.0 + cm.exp(-x))
    z = cm.exp(x)
    return z / (1.0 + z)


cdef inline double logaddexp_c(double a, double b) noexcept nogil:
    # log(exp(a) + exp(b)) = max + log1p(exp(-|a - b|)); equal infinities give that
    # infinity (np.logaddexp(inf, inf) == inf, not nan)
    cdef double m
    if a == b:
        return a + cm.M_LN2
    m = a if a > b else b
    if a != a or b != b:
        return a + b   # nan
    return m + cm.log1p(cm.exp(-cm.fabs(a - b)))


cdef inline double maximum_c(double a, double b) noexcept nogil:
    # np.maximum: nan if either operand is nan
    if a != a:
        return a
    if b != b:
        return b
    return a if a >= b else b


cdef inline double minimum_c(double a, double b) noexcept nogil:
    if a != a:
        return a
    if b != b:
        return b
    return a if a <= b else b


cdef inline bint compare_c(int cmp, double x, double y) noexcept nogil:
    """x CMP y for a comparison code (CMP_LT ... CMP_NE); nan compares as in C."""
    if cmp == CMP_LT:
        return x < y
    elif cmp == CMP_LE:
        return x <= y
    elif cmp == CMP_GT:
        return x > y
    elif cmp == CMP_GE:
        return x >= y
    elif cmp == CMP_EQ:
        return x == y
    return x != y


cdef inline double eval_unary(opcode_t op, double x) noexcept nogil:
    if op == OP_NEG:
        return -x
    elif op == OP_SQUARE:
        return x * x
    elif op == OP_RECIPROCAL:
        return 1.0 / x
    elif op == OP_SQRT:
        return cm.sqrt(x)
    elif op == OP_CBRT:
        return cm.cbrt(x)
    elif op == OP_EXP:
        return cm.exp(x)
    elif op == OP_EXP2:
        return cm.exp2(x)
    elif op == OP_EXPM1:
        return cm.expm1(x)
    elif op == OP_LOG:
        return cm.log(x)
    elif op == OP_LOG2:
        return cm.log2(x)
    elif op == OP_LOG10:
        return cm.log10(x)
    elif op == OP_LOG1P:
        return cm.log1p(x)
    elif op == OP_SIN:
        return cm.sin(x)
    elif op == OP_COS:
        return cm.cos(x)
    elif op == OP_TAN:
        return cm.tan(x)
    elif op == OP_ARCSIN:
        return cm.asin(x)
    elif op == OP_ARCCOS:
        return cm.acos(x)
    elif op == OP_ARCTAN:
        return cm.atan(x)
    elif op == OP_SINH:
        return cm.sinh(x)
    elif op == OP_COSH:
        return cm.cosh(x)
    elif op == OP_TANH:
        return cm.tanh(x)
    elif op == OP_ARCSINH:
        return cm.asinh(x)
    elif op == OP_ARCCOSH:
        return cm.acosh(x)
    elif op == OP_ARCTANH:
        return cm.atanh(x)
    elif op == OP_ABS:
        return cm.fabs(x)
    elif op == OP_SIGN:
        return sign_c(x)
    elif op == OP_ERF:
        return cm.erf(x)
    elif op == OP_SIGMOID:
        return sigmoid_c(x)
    return cm.NAN


cdef inline double eval_binary(opcode_t op, double a, double b) noexcept nogil:
    if op == OP_ADD_VV:
        return a + b
    elif op == OP_SUB_VV:
        return a - b
    elif op == OP_MUL_VV:
        return a * b
    elif op == OP_DIV_VV:
        return a / b
    elif op == OP_POW_VV:
        return cm.pow(a, b)
    elif op == OP_ARCTAN2:
        return cm.atan2(a, b)
    elif op == OP_HYPOT:
        return cm.hypot(a, b)
    elif op == OP_MAXIMUM:
        return maximum_c(a, b)
    elif op == OP_MINIMUM:
        return minimum_c(a, b)
    elif op == OP_LOGADDEXP:
        return logaddexp_c(a, b)
    return cm.NAN


# -- derivatives ------------------------------------------------------------------------
# Each formula is written once here and used by the scalar sweep and by the elementwise
# array kernels. x is the operand, y = op(x) the stored result (reused where cheaper).

cdef inline double unary_partial(opcode_t op, double x, double y) noexcept nogil:
    """dy/dx of a unary op at x."""
    if op == OP_NEG:           # -x
        return -1.0
    elif op == OP_SQUARE:      # x^2
        return 2.0 * x
    elif op == OP_RECIPROCAL:  # 1/x: -1/x^2 = -y^2
        return -y * y
    elif op == OP_SQRT:        # 1/(2 sqrt x): inf at 0 (autograd's convention)
        return 0.5 / y
    elif op == OP_CBRT:        # 1/(3 cbrt(x)^2): inf at 0
        return 1.0 / (3.0 * y * y)
    elif op == OP_EXP:         # exp x = y
        return y
    elif op == OP_EXP2:        # 2^x log 2
        return y * cm.M_LN2
    elif op == OP_EXPM1:       # exp x = y + 1
        return y + 1.0
    elif op == OP_LOG:         # 1/x: inf at 0
        return 1.0 / x
    elif op == OP_LOG2:
        return 1.0 / (x * cm.M_LN2)
    elif op == OP_LOG10:
        return 1.0 / (x * cm.M_LN10)
    elif op == OP_LOG1P:       # 1/(1 + x)
        return 1.0 / (1.0 + x)
    elif op == OP_SIN:
        return cm.cos(x)
    elif op == OP_COS:
        return -cm.sin(x)
    elif op == OP_TAN:         # 1 + tan^2
        return 1.0 + y * y
    elif op == OP_ARCSIN:      # 1/sqrt(1 - x^2): inf at +-1, nan outside
        return 1.0 / cm.sqrt(1.0 - x * x)
    elif op == OP_ARCCOS:
        return -1.0 / cm.sqrt(1.0 - x * x)
    elif op == OP_ARCTAN:
        return 1.0 / (1.0 + x * x)
    elif op == OP_SINH:
        return cm.cosh(x)
    elif op == OP_COSH:
        return cm.sinh(x)
    elif op == OP_TANH:        # 1 - tanh^2
        return 1.0 - y * y
    elif op == OP_ARCSINH:     # 1/sqrt(x^2 + 1), as 1/hypot(x, 1): no overflow of x^2
        return 1.0 / cm.hypot(x, 1.0)
    elif op == OP_ARCCOSH:     # 1/sqrt(x^2 - 1), as 1/(sqrt(x - 1) sqrt(x + 1)) so that
        return 1.0 / (cm.sqrt(x - 1.0) * cm.sqrt(x + 1.0))   # x^2 cannot overflow; inf at 1
    elif op == OP_ARCTANH:     # 1/(1 - x^2): inf at +-1
        return 1.0 / (1.0 - x * x)
    elif op == OP_ABS:         # sign x, 0 at 0 (autograd's convention)
        return sign_c(x)
    elif op == OP_SIGN:        # 0 everywhere
        return 0.0
    elif op == OP_ERF:         # 2/sqrt(pi) exp(-x^2)
        return 1.1283791670955126 * cm.exp(-x * x)
    elif op == OP_SIGMOID:     # y (1 - y)
        return y * (1.0 - y)
    return cm.NAN


cdef inline double pow_dbase(double x, double p) noexcept nogil:
    # d(x^p)/dx = p x^(p-1). At p == 0 it is 0 for every x (autograd writes
    # x^where(p, p-1, 1) so that 0^-1 never appears).
    if p == 0.0:
        return 0.0
    return p * cm.pow(x, p - 1.0)


cdef inline double pow_dexponent(double x, double y) noexcept nogil:
    # d(x^p)/dp = log(x) x^p = log(x) y; at x == 0 it is 0 (log(0) * 0 would be nan;
    # autograd replaces x == 0 by 1 inside the log)
    if x == 0.0:
        return 0.0
    return cm.log(x) * y


cdef inline void binary_partials(opcode_t op, double a, double b, double y,
                                 double* da, double* db) noexcept nogil:
    """dy/da and dy/db of a binary op at (a, b)."""
    cdef double d
    if op == OP_ADD_VV:        # a + b
        da[0] = 1.0
        db[0] = 1.0
    elif op == OP_SUB_VV:      # a - b
        da[0] = 1.0
        db[0] = -1.0
    elif op == OP_MUL_VV:      # a b
        da[0] = b
        db[0] = a
    elif op == OP_DIV_VV:      # a / b: (1/b, -y/b)
        da[0] = 1.0 / b
        db[0] = -y / b
    elif op == OP_POW_VV:      # a^b
        da[0] = pow_dbase(a, b)
        db[0] = pow_dexponent(a, y)
    elif op == OP_ARCTAN2:     # atan2(a, b): (b, -a) / (a^2 + b^2), nan at the origin;
        d = cm.hypot(a, b)     # divided by hypot twice so that a^2 + b^2 cannot overflow
        da[0] = b / d / d
        db[0] = -a / d / d
    elif op == OP_HYPOT:       # (a, b) / y, nan at the origin (autograd's convention)
        da[0] = a / y
        db[0] = b / y
    elif op == OP_MAXIMUM or op == OP_MINIMUM:
        # to the operand equal to the result; a tie splits evenly (autograd's
        # balanced_eq); a nan operand gives nan
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
    elif op == OP_LOGADDEXP:   # softmax weights exp(a - y) = sigmoid(a - b), from the
        if a == b:             # difference (exp(a - y) loses precision for large y);
            da[0] = 0.5        # equal arguments (infinities included) share evenly
            db[0] = 0.5
        else:
            da[0] = sigmoid_c(a - b)
            db[0] = sigmoid_c(b - a)
    else:
        da[0] = cm.NAN
        db[0] = cm.NAN


# -- second derivatives (for the forward-over-reverse Hessian-vector product) ----------

cdef inline double unary_second(opcode_t op, double x, double y) noexcept nogil:
    """d2y/dx2 of a unary op at x (y = op(x))."""
    cdef double d
    if op == OP_SQUARE:
        return 2.0
    elif op == OP_RECIPROCAL:  # 2/x^3 = 2y^3
        return 2.0 * y * y * y
    elif op == OP_SQRT:        # -1/(4 x^{3/2}) = -0.25/y^3
        return -0.25 / (y * y * y)
    elif op == OP_CBRT:        # -2/(9 x^{5/3}) = -2/(9 y^5)
        return -2.0 / (9.0 * y * y * y * y * y)
    elif op == OP_EXP:
        return y
    elif op == OP_EXP2:
        return y * cm.M_LN2 * cm.M_LN2
    elif op == OP_EXPM1:
        return y + 1.0
    elif op == OP_LOG:
        return -1.0 / (x * x)
    elif op == OP_LOG2:
        return -1.0 / (x * x * cm.M_LN2)
    elif op == OP_LOG10:
        return -1.0 / (x * x * cm.M_LN10)
    elif op == OP_LOG1P:
        return -1.0 / ((1.0 + x) * (1.0 + x))
    elif op == OP_SIN or op == OP_COS:   # -sin x, -cos x
        return -y
    elif op == OP_TAN:         # 2 y (1 + y^2)
        return 2.0 * y * (1.0 + y * y)
    elif op == OP_ARCSIN:      # x / (1 - x^2)^{3/2}
        d = 1.0 - x * x
        return x / (d * cm.sqrt(d))
    elif op == OP_ARCCOS:
        d = 1.0 - x * x
        return -x / (d * cm.sqrt(d))
    elif op == OP_ARCTAN:      # -2x / (1 + x^2)^2
        d = 1.0 + x * x
        return -2.0 * x / (d * d)
    elif op == OP_SINH or op == OP_COSH:
        return y
    elif op == OP_TANH:        # -2 y (1 - y^2)
        return -2.0 * y * (1.0 - y * y)
    elif op == OP_ARCSINH:     # -x / (x^2 + 1)^{3/2}
        d = x * x + 1.0
        return -x / (d * cm.sqrt(d))
    elif op == OP_ARCCOSH:     # -x / (x^2 - 1)^{3/2}
        d = (x - 1.0) * (x + 1.0)
        return -x / (d * cm.sqrt(d))
    elif op == OP_ARCTANH:     # 2x / (1 - x^2)^2
        d = 1.0 - x * x
        return 2.0 * x / (d * d)
    elif op == OP_ERF:         # -2x 2/sqrt(pi) exp(-x^2)
        return -2.0 * x * 1.1283791670955126 * cm.exp(-x * x)
    elif op == OP_SIGMOID:     # y (1 - y) (1 - 2y)
        return y * (1.0 - y) * (1.0 - 2.0 * y)
    return 0.0                 # NEG, ABS, SIGN


cdef inline void binary_second(opcode_t op, double a, double b, double y,
                               double* daa, double* dab, double* dbb) noexcept nogil:
    """Second partials of a binary op at (a, b)."""
    cdef double d, s
    daa[0] = 0.0
    dab[0] = 0.0
    dbb[0] = 0.0
    if op == OP_MUL_VV:
        dab[0] = 1.0
    elif op == OP_DIV_VV:      # y = a/b: (0, -1/b^2, 2y/b^2)
        dab[0] = -1.0 / (b * b)
        dbb[0] = 2.0 * y / (b * b)
    elif op == OP_POW_VV:      # y = a^b, with autograd's conventions at a = 0, b = 0
        if b != 0.0 and b != 1.0:
            daa[0] = b * (b - 1.0) * cm.pow(a, b - 2.0)
        if a != 0.0:
            dab[0] = cm.pow(a, b - 1.0) * (1.0 + b * cm.log(a))
            dbb[0] = cm.log(a) * cm.log(a) * y
        elif b == 1.0:
            dab[0] = 1.0
    elif op == OP_ARCTAN2:     # r = a^2 + b^2: (-2ab, a^2 - b^2, 2ab) / r^2
        d = a * a + b * b
        d = d * d
        daa[0] = -2.0 * a * b / d
        dab[0] = (a * a - b * b) / d
        dbb[0] = 2.0 * a * b / d
    elif op == OP_HYPOT:       # (b^2, -ab, a^2) / y^3
        d = y * y * y
        daa[0] = b * b / d
        dab[0] = -a * b / d
        dbb[0] = a * a / d
    elif op == OP_LOGADDEXP:   # s = sigmoid(a - b): s(1 - s) (1, -1, 1)
        s = 0.5 if a == b else sigmoid_c(a - b)
        d = s * (1.0 - s)
        daa[0] = d
        dab[0] = -d
        dbb[0] = d
