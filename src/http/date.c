/* HTTP-date, RFC 9110 §5.6.7: IMF-fixdate, obsolete RFC 850 and asctime
 * forms. Two-digit RFC 850 years are read as within 50 years of 2000, which
 * is what a recipient is told to do relative to "now" (close enough for
 * dates that are only ever compared). */
#include "http/date.h"
#include "http/chars.h"

static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
static const char wkdays[] = "SunMonTueWedThuFriSat";

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int num(const char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!http_is((unsigned char)p[i], CH_DIGIT))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* Letter case is not held against a sender (§5.6.7: recipients ought to
 * be lenient with dates): "nov" and "NOV" are November. */
static int month(const char *p)
{
    for (int i = 0; i < 12; i++)
        if (http_lower((unsigned char)p[0]) == http_lower((unsigned char)months[i * 3]) &&
            http_lower((unsigned char)p[1]) == months[i * 3 + 1] &&
            http_lower((unsigned char)p[2]) == months[i * 3 + 2])
            return i + 1;
    return -1;
}

static int is_gmt(const char *p)
{
    return http_lower((unsigned char)p[0]) == 'g' && http_lower((unsigned char)p[1]) == 'm' &&
           http_lower((unsigned char)p[2]) == 't';
}

/* "HH:MM:SS" */
static int64_t clock_time(const char *p)
{
    if (p[2] != ':' || p[5] != ':')
        return -1;
    int h = num(p, 2), m = num(p + 3, 2), s = num(p + 6, 2);
    if (h < 0 || m < 0 || s < 0 || h > 23 || m > 59 || s > 60)
        return -1;
    return h * 3600 + m * 60 + s;
}

static int64_t assemble(int64_t y, int mo, int d, int64_t secs)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || d < 1 || d > mdays[mo - 1] || secs < 0 || y < 1900 || y > 9999)
        return HTTP_DATE_INVALID;
    return days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + secs;
}

int64_t http_date_parse(struct slice s)
{
    const char *p = s.p;
    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
    if (s.len == 29 && p[3] == ',' && p[4] == ' ' && p[7] == ' ' && p[11] == ' ' && p[16] == ' ' &&
        p[25] == ' ' && is_gmt(p + 26))
        return assemble(num(p + 12, 4), month(p + 8), num(p + 5, 2), clock_time(p + 17));
    /* asctime: "Sun Nov  6 08:49:37 1994" */
    if (s.len == 24 && p[3] == ' ' && p[7] == ' ' && p[10] == ' ' && p[19] == ' ') {
        int d = p[8] == ' ' ? num(p + 9, 1) : num(p + 8, 2);
        return assemble(num(p + 20, 4), month(p + 4), d, clock_time(p + 11));
    }
    /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
    const char *comma = memchr(p, ',', s.len < 10 ? s.len : 10);
    if (comma && (size_t)(p + s.len - comma) == 24) {
        const char *q = comma + 2;
        if (comma[1] != ' ' || q[2] != '-' || q[6] != '-' || q[9] != ' ' || q[18] != ' ' ||
            !is_gmt(q + 19))
            return HTTP_DATE_INVALID;
        int yy = num(q + 7, 2);
        if (yy < 0)
            return HTTP_DATE_INVALID;
        return assemble(yy < 50 ? 2000 + yy : 1900 + yy, month(q + 3), num(q, 2),
                        clock_time(q + 10));
    }
    return HTTP_DATE_INVALID;
}

void http_date_format(int64_t t, char out[HTTP_DATE_LEN])
{
    int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    int64_t secs = t - days * 86400;
    /* civil_from_days */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = (int64_t)yoe + era * 400 + (m <= 2);
    int wd = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
    int h = (int)(secs / 3600), mi = (int)(secs / 60 % 60), sc = (int)(secs % 60);
    memcpy(out, wkdays + wd * 3, 3);
    out[3] = ',';
    out[4] = ' ';
    out[5] = (char)('0' + d / 10);
    out[6] = (char)('0' + d % 10);
    out[7] = ' ';
    memcpy(out + 8, months + (m - 1) * 3, 3);
    out[11] = ' ';
    out[12] = (char)('0' + y / 1000 % 10);
    out[13] = (char)('0' + y / 100 % 10);
    out[14] = (char)('0' + y / 10 % 10);
    out[15] = (char)('0' + y % 10);
    out[16] = ' ';
    out[17] = (char)('0' + h / 10);
    out[18] = (char)('0' + h % 10);
    out[19] = ':';
    out[20] = (char)('0' + mi / 10);
    out[21] = (char)('0' + mi % 10);
    out[22] = ':';
    out[23] = (char)('0' + sc / 10);
    out[24] = (char)('0' + sc % 10);
    memcpy(out + 25, " GMT", 4);
}
