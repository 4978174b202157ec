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
