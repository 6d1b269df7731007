/* epochbot.book._fastbook: optional C accelerator for OrderBook._apply_levels (the engine's hot path).
 *
 * levels_to_units(levels, price_decimals, qty_decimals) -> list[tuple[int, int]]
 *     Exact decimal-string -> integer-unit conversion with epochbot.model.numeric.parse_units semantics:
 *     ASCII digits, optionally "." and more ASCII digits ("1." is accepted, ".5" is not);
 *     fractional digits beyond `decimals` must all be zeros. 64-bit arithmetic with overflow
 *     checks; a value beyond 64 bits is built as a Python int (still exact). Bad strings raise
 *     epochbot.model.numeric.DecimalFormatError (a ValueError), non-str TypeError, a level that is not a
 *     pair ValueError. Nothing partial is returned.
 *
 * apply_side(side, pairs, is_bid, best) -> (top | None, lost)
 *     The per-side loop of OrderBook._apply_levels: qty 0 pops the price (if present), else
 *     sets it; top is the best non-zero price of the message still present afterwards; lost
 *     says whether a pop removed `best`.
 *
 * grid_tick(pairs, tick) -> int
 *     gcd-coarsens `tick` until every price of `pairs` is a multiple of it (tick > 0).
 *
 * apply_levels(bids, asks, bid_levels, ask_levels, price_decimals, qty_decimals, tick,
 *              best_bid, best_ask) -> (tick, bid_top, bid_lost, ask_top, ask_lost) | None
 *     What OrderBook._apply_levels calls: the three steps above fused for both sides without
 *     intermediate tuples (parse all, then tick, then apply). None (nothing touched) when a value
 *     or the tick needs more than 64 bits; the book then uses the three functions above.
 *
 * The pure-Python path in core/book/book.py is the reference; tests/core/test_fastbook.py checks
 * parity.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static PyObject *DecimalError = NULL; /* epochbot.model.numeric.DecimalFormatError, or ValueError */
static PyObject *math_gcd = NULL;

static int bad_decimal(PyObject *s, const char *why)
{
    PyErr_Format(DecimalError, "%s: %R", why, s);
    return -1;
}

/* Slow exact path for values beyond 64 bits: int(whole + frac[:used] + "0" * pad). */
static PyObject *big_units(const char *c, Py_ssize_t nwhole, Py_ssize_t fracstart, Py_ssize_t used,
                           Py_ssize_t pad)
{
    Py_ssize_t len = nwhole + used + pad;
    char *buf = (char *)PyMem_Malloc((size_t)len + 1);
    if (buf == NULL)
        return PyErr_NoMemory();
    memcpy(buf, c, (size_t)nwhole);
    memcpy(buf + nwhole, c + fracstart, (size_t)used);
    memset(buf + nwhole + used, '0', (size_t)pad);
    buf[len] = '\0';
    PyObject *r = PyLong_FromString(buf, NULL, 10);
    PyMem_Free(buf);
    return r;
}

/* One decimal string -> 64-bit units: 0 ok (*out set), 1 beyond 64 bits (nothing set, no
 * exception; *big gets the exact int if big != NULL), -1 error with an exception set. */
static int parse_ll(PyObject *s, Py_ssize_t decimals, long long *out, PyObject **big)
{
    if (!PyUnicode_Check(s)) {
        PyErr_Format(PyExc_TypeError, "not a decimal string: %R", s);
        return -1;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(s) < 0)
        return -1;
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (n == 0) {
        bad_decimal(s, "not a decimal string");
        return -1;
    }
    if (!PyUnicode_IS_ASCII(s)) {
        bad_decimal(s, "not a plain decimal");
        return -1;
    }
    const char *c = (const char *)PyUnicode_1BYTE_DATA(s);
    Py_ssize_t i = 0;
    long long v = 0;
    int overflow = 0;
    while (i < n && c[i] >= '0' && c[i] <= '9') {
        if (!overflow && (__builtin_mul_overflow(v, 10LL, &v) || __builtin_add_overflow(v, (long long)(c[i] - '0'), &v)))
            overflow = 1;
        i++;
    }
    Py_ssize_t nwhole = i;
    if (nwhole == 0) {
        bad_decimal(s, "not a plain decimal");
        return -1;
    }
    Py_ssize_t fracstart = n, nfrac = 0;
    if (i < n) {
        if (c[i] != '.') {
            bad_decimal(s, "not a plain decimal");
            return -1;
        }
        fracstart = ++i;
        while (i < n && c[i] >= '0' && c[i] <= '9')
            i++;
        if (i < n) {
            bad_decimal(s, "not a plain decimal");
            return -1;
        }
        nfrac = n - fracstart;
    }
    Py_ssize_t used = nfrac;
    if (nfrac > decimals) {
        for (Py_ssize_t k = fracstart + decimals; k < n; k++) {
            if (c[k] != '0') {
                PyErr_Format(DecimalError, "%R has more than %zd decimals", s, decimals);
                return -1;
            }
        }
        used = decimals;
    }
    for (Py_ssize_t k = fracstart; k < fracstart + used; k++) {
        if (!overflow && (__builtin_mul_overflow(v, 10LL, &v) || __builtin_add_overflow(v, (long long)(c[k] - '0'), &v)))
            overflow = 1;
    }
    Py_ssize_t pad = decimals - used;
    if (!overflow && v != 0) {
        for (Py_ssize_t k = 0; k < pad; k++) {
            if (__builtin_mul_overflow(v, 10LL, &v)) {
                overflow = 1;
                break;
            }
        }
    }
    if (overflow) {
        if (big != NULL) {
            *big = big_units(c, nwhole, fracstart, used, pad);
            if (*big == NULL)
                return -1;
        }
        return 1;
    }
    *out = v;
    return 0;
}

/* One decimal string -> new reference to an int, or NULL with an exception set. */
static PyObject *parse_units(PyObject *s, Py_ssize_t decimals)
{
    long long v = 0;
    PyObject *big = NULL;
    int r = parse_ll(s, decimals, &v, &big);
    if (r < 0)
        return NULL;
    if (r > 0)
        return big;
    return PyLong_FromLongLong(v);
}

static int get_decimals(PyObject *o, Py_ssize_t *out, const char *name)
{
    Py_ssize_t d = PyNumber_AsSsize_t(o, PyExc_OverflowError);
    if (d == -1 && PyErr_Occurred())
        return -1;
    if (d < 0) {
        PyErr_Format(PyExc_ValueError, "%s must be non-negative", name);
        return -1;
    }
    *out = d;
    return 0;
}

static PyObject *levels_to_units(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "levels_to_units(levels, price_decimals, qty_decimals)");
        return NULL;
    }
    Py_ssize_t pd, qd;
    if (get_decimals(args[1], &pd, "price_decimals") < 0 || get_decimals(args[2], &qd, "qty_decimals") < 0)
        return NULL;
    PyObject *seq = PySequence_Fast(args[0], "levels must be iterable");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *out = PyList_New(n);
    if (out == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *level = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *lv = PySequence_Fast(level, "a level must be a [price, qty] pair");
        if (lv == NULL) {
            /* Python's `for p, q in levels` raises TypeError for a non-iterable level too. */
            goto fail;
        }
        if (PySequence_Fast_GET_SIZE(lv) != 2) {
            PyErr_Format(PyExc_ValueError, "a level must be a [price, qty] pair, got %zd items",
                         PySequence_Fast_GET_SIZE(lv));
            Py_DECREF(lv);
            goto fail;
        }
        PyObject *p = parse_units(PySequence_Fast_GET_ITEM(lv, 0), pd);
        if (p == NULL) {
            Py_DECREF(lv);
            goto fail;
        }
        PyObject *q = parse_units(PySequence_Fast_GET_ITEM(lv, 1), qd);
        Py_DECREF(lv);
        if (q == NULL) {
            Py_DECREF(p);
            goto fail;
        }
        PyObject *t = PyTuple_New(2);
        if (t == NULL) {
            Py_DECREF(p);
            Py_DECREF(q);
            goto fail;
        }
        PyTuple_SET_ITEM(t, 0, p);
        PyTuple_SET_ITEM(t, 1, q);
        PyList_SET_ITEM(out, i, t);
    }
    Py_DECREF(seq);
    return out;
fail:
    Py_DECREF(seq);
    Py_DECREF(out); /* unset slots are NULL; list dealloc handles them */
    return NULL;
}

/* (p, q) from a pair produced by levels_to_units (borrowed references). */
static int unpack_pair(PyObject *pair, PyObject **p, PyObject **q)
{
    if (PyTuple_CheckExact(pair) && PyTuple_GET_SIZE(pair) == 2) {
        *p = PyTuple_GET_ITEM(pair, 0);
        *q = PyTuple_GET_ITEM(pair, 1);
        return 0;
    }
    if (PyList_CheckExact(pair) && PyList_GET_SIZE(pair) == 2) {
        *p = PyList_GET_ITEM(pair, 0);
        *q = PyList_GET_ITEM(pair, 1);
        return 0;
    }
    PyErr_SetString(PyExc_TypeError, "pairs must hold (price, qty) 2-tuples");
    return -1;
}

/* Remove key if present; 1 if removed, 0 if absent, -1 on error. */
static int dict_discard(PyObject *d, PyObject *key)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyDict_Pop(d, key, NULL);
#else
    PyObject *v = PyDict_GetItemWithError(d, key);
    if (v == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (PyDict_DelItem(d, key) < 0)
        return -1;
    return 1;
#endif
}

static PyObject *apply_side(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "apply_side(side, pairs, is_bid, best)");
        return NULL;
    }
    PyObject *side = args[0];
    PyObject *pairs = args[1];
    PyObject *best = args[3];
    if (!PyDict_Check(side)) {
        PyErr_SetString(PyExc_TypeError, "side must be a dict");
        return NULL;
    }
    if (!PyList_CheckExact(pairs)) {
        PyErr_SetString(PyExc_TypeError, "pairs must be a list");
        return NULL;
    }
    int is_bid = PyObject_IsTrue(args[2]);
    if (is_bid < 0)
        return NULL;
    int better = is_bid ? Py_GT : Py_LT;
    PyObject *top = NULL; /* borrowed from pairs (kept alive by the list) */
    int lost = 0;
    Py_ssize_t n = PyList_GET_SIZE(pairs);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p, *q;
        if (unpack_pair(PyList_GET_ITEM(pairs, i), &p, &q) < 0)
            return NULL;
        int nz = PyObject_IsTrue(q);
        if (nz < 0)
            return NULL;
        if (nz) {
            if (PyDict_SetItem(side, p, q) < 0)
                return NULL;
            if (top == NULL) {
                top = p;
            } else {
                int b = PyObject_RichCompareBool(p, top, better);
                if (b < 0)
                    return NULL;
                if (b)
                    top = p;
            }
        } else {
            int removed = dict_discard(side, p);
            if (removed < 0)
                return NULL;
            if (removed && !lost) {
                int eq = PyObject_RichCompareBool(p, best, Py_EQ);
                if (eq < 0)
                    return NULL;
                if (eq)
                    lost = 1;
            }
        }
    }
    if (top != NULL) {
        int present = PyDict_Contains(side, top);
        if (present < 0)
            return NULL;
        if (!present) {
            /* A price repeated in the message ended deleted: best of those still present. */
            top = NULL;
            for (Py_ssize_t i = 0; i < n; i++) {
                PyObject *p, *q;
                if (unpack_pair(PyList_GET_ITEM(pairs, i), &p, &q) < 0)
                    return NULL;
                int in = PyDict_Contains(side, p);
                if (in < 0)
                    return NULL;
                if (!in)
                    continue;
                if (top == NULL) {
                    top = p;
                } else {
                    int b = PyObject_RichCompareBool(p, top, better);
                    if (b < 0)
                        return NULL;
                    if (b)
                        top = p;
                }
            }
        }
    }
    return Py_BuildValue("(OO)", top != NULL ? top : Py_None, lost ? Py_True : Py_False);
}

static PyObject *grid_tick(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "grid_tick(pairs, tick)");
        return NULL;
    }
    PyObject *pairs = args[0];
    if (!PyList_CheckExact(pairs)) {
        PyErr_SetString(PyExc_TypeError, "pairs must be a list");
        return NULL;
    }
    PyObject *tick = args[1];
    Py_INCREF(tick);
    Py_ssize_t n = PyList_GET_SIZE(pairs);
    int ovf = 0;
    long long t = PyLong_Check(tick) ? PyLong_AsLongLongAndOverflow(tick, &ovf) : 0;
    if (t == -1 && PyErr_Occurred())
        goto error;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p, *q;
        if (unpack_pair(PyList_GET_ITEM(pairs, i), &p, &q) < 0)
            goto error;
        if (t > 0 && !ovf && PyLong_CheckExact(p)) {
            int povf = 0;
            long long pv = PyLong_AsLongLongAndOverflow(p, &povf);
            if (pv == -1 && PyErr_Occurred())
                goto error;
            if (!povf && pv >= 0) {
                if (pv % t == 0)
                    continue;
                long long a = t, b = pv;
                while (b) {
                    long long r = a % b;
                    a = b;
                    b = r;
                }
                t = a;
                Py_SETREF(tick, PyLong_FromLongLong(t));
                if (tick == NULL)
                    return NULL;
                continue;
            }
        }
        /* Generic path: if p % tick: tick = math.gcd(tick, p) */
        PyObject *r = PyNumber_Remainder(p, tick);
        if (r == NULL)
            goto error;
        int nz = PyObject_IsTrue(r);
        Py_DECREF(r);
        if (nz < 0)
            goto error;
        if (nz) {
            PyObject *g = PyObject_CallFunctionObjArgs(math_gcd, tick, p, NULL);
            if (g == NULL)
                goto error;
            Py_SETREF(tick, g);
            ovf = 0;
            t = PyLong_Check(tick) ? PyLong_AsLongLongAndOverflow(tick, &ovf) : 0;
            if (t == -1 && PyErr_Occurred())
                goto error;
        }
    }
    return tick;
error:
    Py_XDECREF(tick);
    return NULL;
}

/* ------------------------------------------------------------------ fused message apply */

typedef struct {
    long long p, q;
} lvl_t;

#define STACK_LEVELS 128

/* Parse one side's [price, qty] levels into out[]: 0 ok, 1 beyond 64 bits, -1 error. */
static int parse_side(PyObject *seq, Py_ssize_t pd, Py_ssize_t qd, lvl_t *out)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *level = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *a, *b;
        if (PyList_CheckExact(level) && PyList_GET_SIZE(level) == 2) {
            a = PyList_GET_ITEM(level, 0);
            b = PyList_GET_ITEM(level, 1);
            int r = parse_ll(a, pd, &out[i].p, NULL);
            if (r == 0)
                r = parse_ll(b, qd, &out[i].q, NULL);
            if (r != 0)
                return r;
            continue;
        }
        PyObject *lv = PySequence_Fast(level, "a level must be a [price, qty] pair");
        if (lv == NULL)
            return -1;
        if (PySequence_Fast_GET_SIZE(lv) != 2) {
            PyErr_Format(PyExc_ValueError, "a level must be a [price, qty] pair, got %zd items",
                         PySequence_Fast_GET_SIZE(lv));
            Py_DECREF(lv);
            return -1;
        }
        int r = parse_ll(PySequence_Fast_GET_ITEM(lv, 0), pd, &out[i].p, NULL);
        if (r == 0)
            r = parse_ll(PySequence_Fast_GET_ITEM(lv, 1), qd, &out[i].q, NULL);
        Py_DECREF(lv);
        if (r != 0)
            return r;
    }
    return 0;
}

static inline long long gcd_ll(long long a, long long b)
{
    while (b) {
        long long r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/* apply_side on parsed levels. *top_out: new reference or NULL (None). */
static int apply_parsed(PyObject *side, const lvl_t *lv, Py_ssize_t n, int is_bid, PyObject *best,
                        PyObject **top_out, int *lost_out)
{
    long long bestv = 0;
    int best_kind = 0; /* 0: never equal (None or beyond 64 bits), 1: compare bestv, 2: generic */
    if (best != Py_None) {
        if (PyLong_Check(best)) {
            int ovf = 0;
            bestv = PyLong_AsLongLongAndOverflow(best, &ovf);
            if (bestv == -1 && PyErr_Occurred())
                return -1;
            best_kind = ovf ? 0 : 1;
        } else {
            best_kind = 2;
        }
    }
    PyObject *topkey = NULL;
    long long topv = 0;
    int lost = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        long long p = lv[i].p, q = lv[i].q;
        PyObject *key = PyLong_FromLongLong(p);
        if (key == NULL)
            goto error;
        if (q) {
            PyObject *val = PyLong_FromLongLong(q);
            if (val == NULL || PyDict_SetItem(side, key, val) < 0) {
                Py_XDECREF(val);
                Py_DECREF(key);
                goto error;
            }
            Py_DECREF(val);
            if (topkey == NULL || (is_bid ? p > topv : p < topv)) {
                Py_XSETREF(topkey, key);
                topv = p;
            } else {
                Py_DECREF(key);
            }
        } else {
            int removed = dict_discard(side, key);
            if (removed < 0) {
                Py_DECREF(key);
                goto error;
            }
            if (removed && !lost) {
                if (best_kind == 1)
                    lost = p == bestv;
                else if (best_kind == 2) {
                    int eq = PyObject_RichCompareBool(key, best, Py_EQ);
                    if (eq < 0) {
                        Py_DECREF(key);
                        goto error;
                    }
                    lost = eq;
                }
            }
            Py_DECREF(key);
        }
    }
    if (topkey != NULL) {
        int present = PyDict_Contains(side, topkey);
        if (present < 0)
            goto error;
        if (!present) {
            /* A price repeated in the message ended deleted: best of those still present. */
            Py_CLEAR(topkey);
            for (Py_ssize_t i = 0; i < n; i++) {
                long long p = lv[i].p;
                if (topkey != NULL && !(is_bid ? p > topv : p < topv))
                    continue;
                PyObject *key = PyLong_FromLongLong(p);
                if (key == NULL)
                    goto error;
                int in = PyDict_Contains(side, key);
                if (in < 0) {
                    Py_DECREF(key);
                    goto error;
                }
                if (in) {
                    Py_XSETREF(topkey, key);
                    topv = p;
                } else {
                    Py_DECREF(key);
                }
            }
        }
    }
    *top_out = topkey;
    *lost_out = lost;
    return 0;
error:
    Py_XDECREF(topkey);
    return -1;
}

/* The fused apply on parsed levels (bids bl[0..nb), asks al[0..na)): coarsen the tick over bids
 * then asks, apply each side like apply_side, and build (tick, bid_top, bid_lost, ask_top,
 * ask_lost). Py_None (new ref, nothing touched) when the tick does not fit 64 bits; NULL on error. */
static PyObject *apply_core(PyObject *bids, PyObject *asks, const lvl_t *bl, Py_ssize_t nb, const lvl_t *al,
                            Py_ssize_t na, PyObject *tick, PyObject *best_bid, PyObject *best_ask)
{
    /* tick: `if tick and tick != 1:` coarsen it over every price (bids first, then asks). */
    int truthy = PyObject_IsTrue(tick);
    if (truthy < 0)
        return NULL;
    PyObject *new_tick;
    if (truthy) {
        int ovf = 0;
        long long t = PyLong_CheckExact(tick) ? PyLong_AsLongLongAndOverflow(tick, &ovf) : -1;
        if (t == -1 && PyErr_Occurred())
            return NULL;
        if (ovf || t <= 0)
            return Py_NewRef(Py_None);
        long long t0 = t;
        if (t != 1) {
            for (int s = 0; s < 2; s++) {
                const lvl_t *lv = s ? al : bl;
                Py_ssize_t n = s ? na : nb;
                for (Py_ssize_t i = 0; i < n; i++) {
                    long long p = lv[i].p;
                    if (p < 0) /* cannot happen (parse gives non-negative units) */
                        return Py_NewRef(Py_None);
                    if (p % t)
                        t = gcd_ll(t, p);
                }
            }
        }
        new_tick = t == t0 ? Py_NewRef(tick) : PyLong_FromLongLong(t);
        if (new_tick == NULL)
            return NULL;
    } else {
        new_tick = Py_NewRef(tick);
    }
    PyObject *btop = NULL, *atop = NULL;
    int blost = 0, alost = 0;
    if (apply_parsed(bids, bl, nb, 1, best_bid, &btop, &blost) < 0 ||
        apply_parsed(asks, al, na, 0, best_ask, &atop, &alost) < 0) {
        Py_DECREF(new_tick);
        Py_XDECREF(btop);
        return NULL;
    }
    PyObject *result = PyTuple_New(5);
    if (result == NULL) {
        Py_DECREF(new_tick);
        Py_XDECREF(btop);
        Py_XDECREF(atop);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, new_tick);
    PyTuple_SET_ITEM(result, 1, btop != NULL ? btop : Py_NewRef(Py_None));
    PyTuple_SET_ITEM(result, 2, Py_NewRef(blost ? Py_True : Py_False));
    PyTuple_SET_ITEM(result, 3, atop != NULL ? atop : Py_NewRef(Py_None));
    PyTuple_SET_ITEM(result, 4, Py_NewRef(alost ? Py_True : Py_False));
    return result;
}

/* apply_levels(bids, asks, bid_levels, ask_levels, price_decimals, qty_decimals, tick,
 *              best_bid, best_ask) -> (tick, bid_top, bid_lost, ask_top, ask_lost) | None
 *
 * The whole of _apply_levels but the best-price walk: both sides parsed first (a bad string
 * raises before either dict is touched), the tick coarsened over bids then asks, then each side
 * applied like apply_side. Returns None without touching anything when a value or the tick does
 * not fit 64 bits: the caller then takes the general path. */
static PyObject *apply_levels(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError,
                        "apply_levels(bids, asks, bid_levels, ask_levels, price_decimals, qty_decimals, tick, best_bid, best_ask)");
        return NULL;
    }
    PyObject *bids = args[0], *asks = args[1];
    if (!PyDict_Check(bids) || !PyDict_Check(asks)) {
        PyErr_SetString(PyExc_TypeError, "book sides must be dicts");
        return NULL;
    }
    Py_ssize_t pd, qd;
    if (get_decimals(args[4], &pd, "price_decimals") < 0 || get_decimals(args[5], &qd, "qty_decimals") < 0)
        return NULL;
    PyObject *bseq = PySequence_Fast(args[2], "levels must be iterable");
    if (bseq == NULL)
        return NULL;
    PyObject *aseq = PySequence_Fast(args[3], "levels must be iterable");
    if (aseq == NULL) {
        Py_DECREF(bseq);
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t nb = PySequence_Fast_GET_SIZE(bseq), na = PySequence_Fast_GET_SIZE(aseq);
    lvl_t stackbuf[STACK_LEVELS];
    lvl_t *buf = stackbuf;
    if (nb + na > STACK_LEVELS) {
        buf = (lvl_t *)PyMem_Malloc(sizeof(lvl_t) * (size_t)(nb + na));
        if (buf == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    }
    int r = parse_side(bseq, pd, qd, buf);
    if (r == 0)
        r = parse_side(aseq, pd, qd, buf + nb);
    if (r < 0)
        goto done;
    if (r > 0) { /* beyond 64 bits */
        result = Py_NewRef(Py_None);
        goto done;
    }
    result = apply_core(bids, asks, buf, nb, buf + nb, na, args[6], args[7], args[8]);
done:
    if (buf != stackbuf)
        PyMem_Free(buf);
    Py_DECREF(bseq);
    Py_DECREF(aseq);
    return result;
}

/* apply_units(bids, asks, bid_units, ask_units, tick, best_bid, best_ask)
 *     -> (tick, bid_top, bid_lost, ask_top, ask_lost) | None
 *
 * apply_levels on levels already converted by decode_depth: bid_units/ask_units are bytes of
 * native int64 (price, qty) pairs at the book's scale (the caller checks the scale). None
 * (nothing touched) when the tick does not fit 64 bits. */
static PyObject *apply_units(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "apply_units(bids, asks, bid_units, ask_units, tick, best_bid, best_ask)");
        return NULL;
    }
    PyObject *bids = args[0], *asks = args[1];
    if (!PyDict_Check(bids) || !PyDict_Check(asks)) {
        PyErr_SetString(PyExc_TypeError, "book sides must be dicts");
        return NULL;
    }
    if (!PyBytes_CheckExact(args[2]) || !PyBytes_CheckExact(args[3]) ||
        PyBytes_GET_SIZE(args[2]) % (Py_ssize_t)sizeof(lvl_t) || PyBytes_GET_SIZE(args[3]) % (Py_ssize_t)sizeof(lvl_t)) {
        PyErr_SetString(PyExc_TypeError, "unit levels must be bytes of int64 (price, qty) pairs");
        return NULL;
    }
    Py_ssize_t nb = PyBytes_GET_SIZE(args[2]) / (Py_ssize_t)sizeof(lvl_t);
    Py_ssize_t na = PyBytes_GET_SIZE(args[3]) / (Py_ssize_t)sizeof(lvl_t);
    const char *bp = PyBytes_AS_STRING(args[2]), *ap = PyBytes_AS_STRING(args[3]);
    if (((uintptr_t)bp % _Alignof(lvl_t)) == 0 && ((uintptr_t)ap % _Alignof(lvl_t)) == 0)
        return apply_core(bids, asks, (const lvl_t *)bp, nb, (const lvl_t *)ap, na, args[4], args[5], args[6]);
    /* Not aligned (never on CPython): copy. */
    lvl_t *buf = (lvl_t *)PyMem_Malloc(sizeof(lvl_t) * (size_t)(nb + na + 1));
    if (buf == NULL)
        return PyErr_NoMemory();
    memcpy(buf, bp, sizeof(lvl_t) * (size_t)nb);
    memcpy(buf + nb, ap, sizeof(lvl_t) * (size_t)na);
    PyObject *r = apply_core(bids, asks, buf, nb, buf + nb, na, args[4], args[5], args[6]);
    PyMem_Free(buf);
    return r;
}

/* ------------------------------------------------------------------ depthUpdate decoder */

/* A strict recogniser for Binance depthUpdate frames, bare or in the combined-stream wrapper.
 * Every function returns 0 (ok), 1 (bail: not the simple shape; the caller returns None and the
 * orjson path decides) or -1 (Python error set, e.g. no memory). It accepts only what orjson
 * would parse to the same values: anything unusual bails. */

enum { D_OK = 0, D_BAIL = 1, D_ERR = -1 };

typedef struct {
    const unsigned char *p, *end;
} dcur_t;

typedef struct {
    lvl_t *v;
    Py_ssize_t n, cap;
    lvl_t stack[64];
} lvbuf_t;

static inline void ws(dcur_t *c)
{
    const unsigned char *p = c->p, *end = c->end;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    c->p = p;
}

/* After a container element: ``closer`` ends the container (1), ',' moves to the next element
   (0, whitespace skipped), anything else is not a frame we parse (-1). */
static inline int d_after_item(dcur_t *c, unsigned char closer)
{
    ws(c);
    if (c->p >= c->end)
        return -1;
    if (*c->p == closer) {
        c->p++;
        return 1;
    }
    if (*c->p != ',')
        return -1;
    c->p++;
    ws(c);
    return 0;
}

/* A JSON string of printable ASCII without escapes: *s, *n span its content. */
static inline int d_string(dcur_t *c, const unsigned char **s, Py_ssize_t *n)
{
    const unsigned char *p = c->p, *end = c->end;
    if (p >= end || *p != '"')
        return D_BAIL;
    const unsigned char *start = ++p;
    while (p < end && *p != '"') {
        if (*p < 0x20 || *p >= 0x7f || *p == '\\')
            return D_BAIL;
        p++;
    }
    if (p >= end)
        return D_BAIL;
    *s = start;
    *n = p - start;
    c->p = p + 1;
    return D_OK;
}

/* A non-negative JSON integer that fits int64 (no sign, no fraction, no exponent). */
static inline int d_uint(dcur_t *c, long long *out)
{
    const unsigned char *p = c->p, *end = c->end;
    if (p >= end || *p < '0' || *p > '9')
        return D_BAIL;
    long long v = 0;
    if (*p == '0') {
        p++;
    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            if (__builtin_mul_overflow(v, 10LL, &v) || __builtin_add_overflow(v, (long long)(*p - '0'), &v))
                return D_BAIL;
            p++;
        }
    }
    if (p < end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E'))
        return D_BAIL;
    c->p = p;
    *out = v;
    return D_OK;
}

static const unsigned long long POW10[19] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL, 100000000ULL,
    1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL,
    100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
    1000000000000000000ULL,
};

#define IS_DIGIT(ch) ((unsigned)((ch) - '0') < 10u)

/* A quoted plain decimal ("27123.40", "1.", "7", "007.5") as units of 10**-decimals, with
 * epochbot.model.numeric.parse_units semantics; fractional digits beyond `decimals` must be zeros. With
 * decimals < 0 only the syntax is checked. Bails when the units could need more than 18 digits
 * (the string path handles any size exactly). decimals <= 18. */
static inline int d_decimal(dcur_t *c, Py_ssize_t decimals, long long *out)
{
    const unsigned char *p = c->p, *end = c->end;
    if (p >= end || *p != '"')
        return D_BAIL;
    const unsigned char *w = ++p;
    while (p < end && IS_DIGIT(*p))
        p++;
    const unsigned char *wend = p;
    if (wend == w)
        return D_BAIL;
    const unsigned char *f = p, *fend = p;
    if (p < end && *p == '.') {
        f = ++p;
        while (p < end && IS_DIGIT(*p))
            p++;
        fend = p;
    }
    if (p >= end || *p != '"')
        return D_BAIL;
    c->p = p + 1;
    if (decimals < 0)
        return D_OK;
    Py_ssize_t nf = fend - f;
    Py_ssize_t used = nf < decimals ? nf : decimals;
    for (const unsigned char *k = f + used; k < fend; k++) {
        if (*k != '0')
            return D_BAIL; /* finer than the scale: the string path reports it */
    }
    while (wend - w > 1 && *w == '0')
        w++;
    if ((wend - w) + decimals > 18)
        return D_BAIL;
    unsigned long long v = 0;
    for (const unsigned char *k = w; k < wend; k++)
        v = v * 10u + (unsigned)(*k - '0');
    for (const unsigned char *k = f; k < f + used; k++)
        v = v * 10u + (unsigned)(*k - '0');
    *out = (long long)(v * POW10[decimals - used]);
    return D_OK;
}

static int lv_push(lvbuf_t *b, long long p, long long q)
{
    if (b->n == b->cap) {
        Py_ssize_t cap = b->cap * 2;
        lvl_t *nv;
        if (b->v == b->stack) {
            nv = (lvl_t *)PyMem_Malloc(sizeof(lvl_t) * (size_t)cap);
            if (nv != NULL)
                memcpy(nv, b->v, sizeof(lvl_t) * (size_t)b->n);
        } else {
            nv = (lvl_t *)PyMem_Realloc(b->v, sizeof(lvl_t) * (size_t)cap);
        }
        if (nv == NULL) {
            PyErr_NoMemory();
            return D_ERR;
        }
        b->v = nv;
        b->cap = cap;
    }
    b->v[b->n].p = p;
    b->v[b->n].q = q;
    b->n++;
    return D_OK;
}

/* [["p","q"], ...]; with pd < 0 only the syntax is checked (out may be NULL). */
static int d_levels(dcur_t *c, Py_ssize_t pd, Py_ssize_t qd, lvbuf_t *out)
{
    if (c->p >= c->end || *c->p != '[')
        return D_BAIL;
    c->p++;
    ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return D_OK;
    }
    for (;;) {
        long long p = 0, q = 0;
        int r;
        if (c->p >= c->end || *c->p != '[')
            return D_BAIL;
        c->p++;
        ws(c);
        if ((r = d_decimal(c, pd, &p)) != D_OK)
            return r;
        ws(c);
        if (c->p >= c->end || *c->p != ',')
            return D_BAIL;
        c->p++;
        ws(c);
        if ((r = d_decimal(c, pd < 0 ? -1 : qd, &q)) != D_OK)
            return r;
        ws(c);
        if (c->p >= c->end || *c->p != ']')
            return D_BAIL;
        c->p++;
        if (out != NULL && (r = lv_push(out, p, q)) != D_OK)
            return r;
        if ((r = d_after_item(c, ']')) != 0)
            return r > 0 ? D_OK : D_BAIL;
    }
}

/* A scalar value of a key we do not use: a plain string, a non-negative int, true/false/null. */
static int d_skip_scalar(dcur_t *c)
{
    const unsigned char *s;
    Py_ssize_t n;
    long long v;
    if (c->p >= c->end)
        return D_BAIL;
    switch (*c->p) {
    case '"':
        return d_string(c, &s, &n);
    case 't':
        if (c->end - c->p >= 4 && memcmp(c->p, "true", 4) == 0) {
            c->p += 4;
            return D_OK;
        }
        return D_BAIL;
    case 'f':
        if (c->end - c->p >= 5 && memcmp(c->p, "false", 5) == 0) {
            c->p += 5;
            return D_OK;
        }
        return D_BAIL;
    case 'n':
        if (c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0) {
            c->p += 4;
            return D_OK;
        }
        return D_BAIL;
    default:
        return d_uint(c, &v);
    }
}

enum { K_e = 1, K_E = 2, K_s = 4, K_U = 8, K_u = 16, K_pu = 32, K_b = 64, K_a = 128, K_T = 256 };
#define K_REQUIRED (K_e | K_E | K_s | K_U | K_u | K_b | K_a)

typedef struct {
    unsigned seen;
    long long E, U, u, pu;
    int pu_null;
    PyObject *scales; /* borrowed */
    PyObject *sym;    /* new reference once "s" was read */
    PyObject *scale;  /* borrowed from scales: (pd, qd) once known */
    Py_ssize_t pd, qd;
    const unsigned char *bpos, *apos; /* start of "b"/"a" arrays seen before the scale */
    lvbuf_t *bbuf, *abuf;             /* levels parsed at the scale */
} depth_t;

/* "s" read: the symbol and its scale. D_BAIL when the symbol has no usable scale. */
static int d_symbol(depth_t *d, const unsigned char *s, Py_ssize_t n)
{
    d->sym = PyUnicode_FromStringAndSize((const char *)s, n);
    if (d->sym == NULL)
        return D_ERR;
    PyObject *scale = PyDict_GetItemWithError(d->scales, d->sym); /* borrowed */
    if (scale == NULL)
        return PyErr_Occurred() ? D_ERR : D_BAIL;
    if (!PyTuple_CheckExact(scale) || PyTuple_GET_SIZE(scale) != 2 || !PyLong_CheckExact(PyTuple_GET_ITEM(scale, 0)) ||
        !PyLong_CheckExact(PyTuple_GET_ITEM(scale, 1)))
        return D_BAIL;
    Py_ssize_t pd = PyLong_AsSsize_t(PyTuple_GET_ITEM(scale, 0));
    Py_ssize_t qd = PyLong_AsSsize_t(PyTuple_GET_ITEM(scale, 1));
    if (pd < 0 || qd < 0 || pd > 18 || qd > 18) {
        PyErr_Clear();
        return D_BAIL;
    }
    d->scale = scale;
    d->pd = pd;
    d->qd = qd;
    return D_OK;
}

/* The depthUpdate object at c->p: keys in any order, each at most once. */
static int d_depth_object(dcur_t *c, depth_t *d)
{
    int r;
    if (c->p >= c->end || *c->p != '{')
        return D_BAIL;
    c->p++;
    ws(c);
    if (c->p < c->end && *c->p == '}')
        return D_BAIL; /* empty: not a depthUpdate */
    for (;;) {
        const unsigned char *k;
        Py_ssize_t kn;
        if ((r = d_string(c, &k, &kn)) != D_OK)
            return r;
        ws(c);
        if (c->p >= c->end || *c->p != ':')
            return D_BAIL;
        c->p++;
        ws(c);
        unsigned bit = 0;
        if (kn == 1) {
            switch (k[0]) {
            case 'e': bit = K_e; break;
            case 'E': bit = K_E; break;
            case 's': bit = K_s; break;
            case 'U': bit = K_U; break;
            case 'u': bit = K_u; break;
            case 'b': bit = K_b; break;
            case 'a': bit = K_a; break;
            case 'T': bit = K_T; break;
            default: bit = 0;
            }
        } else if (kn == 2 && k[0] == 'p' && k[1] == 'u') {
            bit = K_pu;
        } else if ((kn == 4 && memcmp(k, "data", 4) == 0) || (kn == 6 && memcmp(k, "stream", 6) == 0)) {
            return D_BAIL; /* a wrapper key inside the event: let orjson decide */
        }
        if (bit & d->seen)
            return D_BAIL; /* duplicate key */
        d->seen |= bit;
        switch (bit) {
        case K_e: {
            const unsigned char *s;
            Py_ssize_t n;
            if ((r = d_string(c, &s, &n)) != D_OK)
                return r;
            if (n != 11 || memcmp(s, "depthUpdate", 11) != 0)
                return D_BAIL;
            break;
        }
        case K_E:
            r = d_uint(c, &d->E);
            break;
        case K_T: {
            long long t;
            r = d_uint(c, &t);
            break;
        }
        case K_U:
            r = d_uint(c, &d->U);
            break;
        case K_u:
            r = d_uint(c, &d->u);
            break;
        case K_pu:
            if (c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0) {
                c->p += 4;
                d->pu_null = 1;
                r = D_OK;
            } else {
                r = d_uint(c, &d->pu);
            }
            break;
        case K_s: {
            const unsigned char *s;
            Py_ssize_t n;
            r = d_string(c, &s, &n);
            if (r == D_OK)
                r = d_symbol(d, s, n);
            break;
        }
        case K_b:
            if (d->scale != NULL) {
                r = d_levels(c, d->pd, d->qd, d->bbuf);
            } else {
                d->bpos = c->p;
                r = d_levels(c, -1, -1, NULL);
            }
            break;
        case K_a:
            if (d->scale != NULL) {
                r = d_levels(c, d->pd, d->qd, d->abuf);
            } else {
                d->apos = c->p;
                r = d_levels(c, -1, -1, NULL);
            }
            break;
        default:
            r = d_skip_scalar(c);
        }
        if (r != D_OK)
            return r;
        if ((r = d_after_item(c, '}')) != 0)
            return r > 0 ? D_OK : D_BAIL;
    }
}

static void lv_init(lvbuf_t *b)
{
    b->v = b->stack;
    b->n = 0;
    b->cap = (Py_ssize_t)(sizeof(b->stack) / sizeof(b->stack[0]));
}

static void lv_free(lvbuf_t *b)
{
    if (b->v != b->stack)
        PyMem_Free(b->v);
}

/* The frame's top level: the wrapper {"stream": "...", "data": {...}} (keys in any order) or the
 * bare event. */
static int d_frame(dcur_t *c, depth_t *d)
{
    int r;
    ws(c);
    const unsigned char *obj = c->p;
    if (c->p >= c->end || *c->p != '{')
        return D_BAIL;
    c->p++;
    ws(c);
    const unsigned char *k;
    Py_ssize_t kn;
    if ((r = d_string(c, &k, &kn)) != D_OK)
        return r;
    if ((kn == 6 && memcmp(k, "stream", 6) == 0) || (kn == 4 && memcmp(k, "data", 4) == 0)) {
        int seen_stream = 0, seen_data = 0;
        for (;;) {
            ws(c);
            if (c->p >= c->end || *c->p != ':')
                return D_BAIL;
            c->p++;
            ws(c);
            if (kn == 6 && memcmp(k, "stream", 6) == 0) {
                const unsigned char *s;
                Py_ssize_t sn;
                if (seen_stream++)
                    return D_BAIL;
                if ((r = d_string(c, &s, &sn)) != D_OK)
                    return r;
            } else if (kn == 4 && memcmp(k, "data", 4) == 0) {
                if (seen_data++)
                    return D_BAIL;
                if ((r = d_depth_object(c, d)) != D_OK)
                    return r;
            } else {
                return D_BAIL; /* another key in the wrapper */
            }
            if ((r = d_after_item(c, '}')) > 0)
                break;
            if (r < 0)
                return D_BAIL;
            if ((r = d_string(c, &k, &kn)) != D_OK)
                return r;
        }
        if (!seen_data)
            return D_BAIL;
    } else {
        c->p = obj;
        if ((r = d_depth_object(c, d)) != D_OK)
            return r;
    }
    ws(c);
    if (c->p != c->end)
        return D_BAIL; /* trailing data */
    if ((d->seen & K_REQUIRED) != K_REQUIRED || d->U > d->u || d->scale == NULL)
        return D_BAIL;
    /* Sides that came before the symbol: parse them now at its scale. */
    if (d->bpos != NULL) {
        dcur_t b = {d->bpos, c->end};
        if ((r = d_levels(&b, d->pd, d->qd, d->bbuf)) != D_OK)
            return r;
    }
    if (d->apos != NULL) {
        dcur_t a = {d->apos, c->end};
        if ((r = d_levels(&a, d->pd, d->qd, d->abuf)) != D_OK)
            return r;
    }
    return D_OK;
}

/* The event type decode_depth_event builds, and where its slots live. */
enum { F_EPOCH, F_SYMBOL, F_FIRST, F_FINAL, F_PREV, F_BIDS, F_ASKS, F_EXCH, F_RECV, F_PROCESS, F_SCALE, F_COUNT };
static PyTypeObject *event_type = NULL;
static Py_ssize_t event_offsets[F_COUNT];

/* bind_depth_type(cls, names): remember cls and the offsets of its slots `names` (11 writable
 * object slots, in the order epoch, symbol, first_id, final_id, prev_final_id, bids, asks,
 * exchange_ts, recv_ts, process_ts, scale). epochbot.venues.binance.wire checks the result equals
 * what cls(...) builds before using it. */
static PyObject *bind_depth_type(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyType_Check(args[0]) || !PyTuple_Check(args[1]) || PyTuple_GET_SIZE(args[1]) != F_COUNT) {
        PyErr_SetString(PyExc_TypeError, "bind_depth_type(cls, names: tuple of 11 slot names)");
        return NULL;
    }
    PyTypeObject *cls = (PyTypeObject *)args[0];
    Py_ssize_t offsets[F_COUNT];
    for (Py_ssize_t i = 0; i < F_COUNT; i++) {
        PyObject *descr = PyObject_GetAttr((PyObject *)cls, PyTuple_GET_ITEM(args[1], i));
        if (descr == NULL)
            return NULL;
        int ok = Py_IS_TYPE(descr, &PyMemberDescr_Type);
        if (ok) {
            PyMemberDef *m = ((PyMemberDescrObject *)descr)->d_member;
            ok = m->type == T_OBJECT_EX && !(m->flags & READONLY) && m->offset > 0 &&
                 (size_t)m->offset + sizeof(PyObject *) <= (size_t)cls->tp_basicsize;
            offsets[i] = m->offset;
        }
        Py_DECREF(descr);
        if (!ok) {
            PyErr_Format(PyExc_TypeError, "%R is not a writable object slot of %R", PyTuple_GET_ITEM(args[1], i), cls);
            return NULL;
        }
    }
    Py_INCREF(cls);
    Py_XSETREF(event_type, cls);
    memcpy(event_offsets, offsets, sizeof(offsets));
    Py_RETURN_NONE;
}

/* decode_depth(raw, scales) -> (symbol, E, U, u, pu | None, bid_units, ask_units, scale) | None
 * decode_depth_event(raw, scales, epoch, recv_ts) -> bound event | None */
static PyObject *decode_common(PyObject *raw, PyObject *scales, PyObject *epoch, PyObject *recv_ts)
{
    const unsigned char *p;
    Py_ssize_t n;
    if (PyBytes_Check(raw)) {
        p = (const unsigned char *)PyBytes_AS_STRING(raw);
        n = PyBytes_GET_SIZE(raw);
    } else if (PyUnicode_Check(raw)) {
#if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(raw) < 0)
            return NULL;
#endif
        if (!PyUnicode_IS_COMPACT_ASCII(raw))
            Py_RETURN_NONE;
        p = (const unsigned char *)PyUnicode_DATA(raw);
        n = PyUnicode_GET_LENGTH(raw);
    } else {
        Py_RETURN_NONE;
    }
    if (!PyDict_Check(scales))
        Py_RETURN_NONE;
    lvbuf_t bb, ab;
    lv_init(&bb);
    lv_init(&ab);
    depth_t d;
    memset(&d, 0, sizeof(d));
    d.scales = scales;
    d.bbuf = &bb;
    d.abuf = &ab;
    dcur_t c = {p, p + n};
    PyObject *result = NULL;
    int r = d_frame(&c, &d);
    if (r == D_BAIL) {
        result = Py_NewRef(Py_None);
    } else if (r == D_OK) {
        PyObject *v[F_COUNT];
        v[F_EPOCH] = epoch;
        v[F_RECV] = recv_ts;
        v[F_SYMBOL] = d.sym;
        v[F_BIDS] = PyBytes_FromStringAndSize((const char *)bb.v, (Py_ssize_t)sizeof(lvl_t) * bb.n);
        v[F_ASKS] = PyBytes_FromStringAndSize((const char *)ab.v, (Py_ssize_t)sizeof(lvl_t) * ab.n);
        v[F_EXCH] = PyLong_FromLongLong(d.E);
        v[F_FIRST] = PyLong_FromLongLong(d.U);
        v[F_FINAL] = PyLong_FromLongLong(d.u);
        v[F_PREV] = (d.seen & K_pu) && !d.pu_null ? PyLong_FromLongLong(d.pu) : Py_NewRef(Py_None);
        v[F_PROCESS] = PyLong_FromLong(0);
        v[F_SCALE] = Py_NewRef(d.scale);
        d.sym = NULL; /* owned by v[] now */
        int failed = 0;
        for (int i = 0; i < F_COUNT; i++)
            if (v[i] == NULL && i != F_EPOCH && i != F_RECV)
                failed = 1;
        if (!failed) {
            if (epoch == NULL) {
                /* The tuple form: (symbol, E, U, u, pu, bids, asks, scale). */
                static const int order[8] = {F_SYMBOL, F_EXCH, F_FIRST, F_FINAL, F_PREV, F_BIDS, F_ASKS, F_SCALE};
                result = PyTuple_New(8);
                if (result != NULL) {
                    for (int i = 0; i < 8; i++) {
                        PyTuple_SET_ITEM(result, i, v[order[i]]);
                        v[order[i]] = NULL;
                    }
                }
            } else {
                PyTypeObject *tp = event_type;
                result = tp->tp_alloc(tp, 0);
                if (result != NULL) {
                    for (int i = 0; i < F_COUNT; i++) {
                        PyObject **slot = (PyObject **)((char *)result + event_offsets[i]);
                        Py_XSETREF(*slot, (i == F_EPOCH || i == F_RECV) ? Py_NewRef(v[i]) : v[i]);
                        if (i != F_EPOCH && i != F_RECV)
                            v[i] = NULL;
                    }
                }
            }
        }
        for (int i = 0; i < F_COUNT; i++)
            if (i != F_EPOCH && i != F_RECV)
                Py_XDECREF(v[i]);
    }
    Py_XDECREF(d.sym);
    lv_free(&bb);
    lv_free(&ab);
    return result;
}

static PyObject *decode_depth(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "decode_depth(raw, scales)");
        return NULL;
    }
    return decode_common(args[0], args[1], NULL, NULL);
}

static PyObject *decode_depth_event(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "decode_depth_event(raw, scales, epoch, recv_ts)");
        return NULL;
    }
    if (event_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "decode_depth_event: no event type bound (bind_depth_type)");
        return NULL;
    }
    return decode_common(args[0], args[1], args[2], args[3]);
}

static PyMethodDef methods[] = {
    {"levels_to_units", (PyCFunction)(void (*)(void))levels_to_units, METH_FASTCALL,
     "levels_to_units(levels, price_decimals, qty_decimals) -> list[tuple[int, int]]"},
    {"apply_side", (PyCFunction)(void (*)(void))apply_side, METH_FASTCALL,
     "apply_side(side, pairs, is_bid, best) -> (top or None, lost)"},
    {"grid_tick", (PyCFunction)(void (*)(void))grid_tick, METH_FASTCALL,
     "grid_tick(pairs, tick) -> tick coarsened so every price is on the grid"},
    {"apply_levels", (PyCFunction)(void (*)(void))apply_levels, METH_FASTCALL,
     "apply_levels(bids, asks, bid_levels, ask_levels, price_decimals, qty_decimals, tick, best_bid, best_ask)"
     " -> (tick, bid_top, bid_lost, ask_top, ask_lost), or None when a value needs more than 64 bits"},
    {"apply_units", (PyCFunction)(void (*)(void))apply_units, METH_FASTCALL,
     "apply_units(bids, asks, bid_units, ask_units, tick, best_bid, best_ask)"
     " -> (tick, bid_top, bid_lost, ask_top, ask_lost), or None when the tick needs more than 64 bits"},
    {"decode_depth", (PyCFunction)(void (*)(void))decode_depth, METH_FASTCALL,
     "decode_depth(raw, scales) -> (symbol, E, U, u, pu, bid_units, ask_units, scale), or None"
     " when the frame is not a plain depthUpdate of a symbol in scales"},
    {"bind_depth_type", (PyCFunction)(void (*)(void))bind_depth_type, METH_FASTCALL,
     "bind_depth_type(cls, names) -> None: the event type decode_depth_event builds (by its slots)"},
    {"decode_depth_event", (PyCFunction)(void (*)(void))decode_depth_event, METH_FASTCALL,
     "decode_depth_event(raw, scales, epoch, recv_ts) -> the bound event type, or None like decode_depth"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "epochbot.book._fastbook", "C accelerator for OrderBook._apply_levels.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastbook(void)
{
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL)
        return NULL;
    PyObject *math = PyImport_ImportModule("math");
    if (math == NULL)
        goto fail;
    math_gcd = PyObject_GetAttrString(math, "gcd");
    Py_DECREF(math);
    if (math_gcd == NULL)
        goto fail;
    PyObject *numeric = PyImport_ImportModule("epochbot.model.numeric");
    if (numeric != NULL) {
        DecimalError = PyObject_GetAttrString(numeric, "DecimalFormatError");
        Py_DECREF(numeric);
    }
    if (DecimalError == NULL) {
        PyErr_Clear();
        DecimalError = Py_NewRef(PyExc_ValueError);
    }
    if (PyModule_AddObjectRef(m, "DecimalFormatError", DecimalError) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
