# Turns bench/run.sh's raw figures into the Markdown of results.md, or with -v chart=1
# into gnuplot's data file. Inputs, told apart by name: ceilings.txt (CEILING lines),
# memory.txt ("pass VmHWM VmRSS, then VmRSS after start and after seeding"), mix.txt ("MIX pass me=.. refresh=.. login=.."), and
# <pass>.results ("RESULT slug rps p50 p99 errors requests status socket rss hwm
# log_lines", the last three read after the scenario, then the CPU seconds of the server,
# the stores and the whole machine before and after it, and its seconds).

BEGIN {
    n = split("unknown health me_bearer me_cookie refresh mixed login register me_flood flood_login forgot_known forgot_unknown", order, " ")
    label["unknown"] = "unknown route (404)"
    label["health"] = "healthchecker"
    label["me_bearer"] = "me (Bearer)"
    label["me_cookie"] = "me (cookie)"
    label["refresh"] = "refresh"
    label["mixed"] = "mixed SPA profile"
    label["login"] = "login"
    label["register"] = "register"
    label["me_flood"] = "me under login flood"
    label["flood_login"] = "login flood, beside it"
    label["forgot_known"] = "forgot-password, known address"
    label["forgot_unknown"] = "forgot-password, unknown address"
    # Which ceiling each scenario is held against (see the notes below the tables).
    split("unknown=- health=http me_bearer=http me_cookie=http refresh=sign mixed=mix login=argon2 register=argon2 me_flood=http flood_login=argon2 forgot_known=http forgot_unknown=http", pairs, " ")
    for (i in pairs) { split(pairs[i], kv, "="); against[kv[1]] = kv[2] }
    np = split(passes, pass_list, " ")
    title["production"] = "Production pass: Postgres and Redis"
    title["embedded"] = "Embedded pass: one SQLite file"
    legend["production"] = "production (Postgres + Redis)"
    legend["embedded"] = "embedded (SQLite)"
}

FILENAME ~ /ceilings\.txt$/ && $1 == "CEILING" { ceiling[$2] = $3; next }
FILENAME ~ /memory\.txt$/ { hwm[$1] = $2; rss[$1] = $3; rss_started[$1] = $4; rss_seeded[$1] = $5; next }
FILENAME ~ /mix\.txt$/ { mix[$2] = $3 ", " $4 ", " $5; next }
FILENAME ~ /\.results$/ && $1 == "RESULT" {
    p = FILENAME; sub(/.*\//, "", p); sub(/\.results$/, "", p)
    k = p SUBSEP $2
    seen[k] = 1
    rps[k] = $3; p50[k] = $4; p99[k] = $5; errors[k] = $6
    status[k] = $8; socket[k] = $9; rss_after[k] = $10; hwm_after[k] = $11; log_total[k] = $12
    requests[k] = $7
    if (NF >= 19 && $19 > 0) {
        server_cores[k] = ($16 - $13) / $19
        store_cores[k] = ($17 - $14) / $19
        other_cores[k] = (($18 - $15) - ($16 - $13) - ($17 - $14)) / $19
        server_us[k] = $7 > 0 ? ($16 - $13) * 1e6 / $7 : 0
    }
}

function ceiling_of(p, slug,    http, sign, argon) {
    http = rps[p SUBSEP "unknown"]
    sign = ceiling["sign_per_s"] / 2
    argon = ceiling["argon2_per_s"]
    if (against[slug] == "http" && http > 0) { c_name = "unknown route"; return http }
    if (against[slug] == "sign") { c_name = "signs/s ÷ 2"; return sign }
    if (against[slug] == "argon2") { c_name = "argon2 verifications/s"; return argon }
    if (against[slug] == "mix" && http > 0) {
        c_name = "blend of the three"
        return 1 / (0.90 / http + 0.08 / sign + 0.02 / argon)
    }
    c_name = "(the HTTP ceiling)"
    return 0
}

function table(p,    i, slug, k, c, err, logged) {
    printf "## %s\n\n", title[p]
    print "| scenario | req/s | p50 ms | p99 ms | errors | ratio to ceiling | ceiling | RSS after (MB) | server log lines |"
    print "|---|--:|--:|--:|---|--:|---|--:|--:|"
    logged = 0
    for (i = 1; i <= n; i++) {
        slug = order[i]; k = p SUBSEP slug
        if (!(k in seen)) continue
        c = ceiling_of(p, slug)
        err = errors[k] == 0 ? "0" : sprintf("**FAIL** %d (status %d, socket %d)", errors[k], status[k], socket[k])
        printf "| %s | %.0f | %.2f | %.2f | %s | %s | %s | %s | %d |\n", label[slug], rps[k], p50[k], p99[k], err,
            (c > 0 ? sprintf("%.2f", rps[k] / c) : "—"), (c > 0 ? sprintf("%s %.0f", c_name, c) : c_name),
            rss_after[k], log_total[k] - logged
        logged = log_total[k]
    }
    printf "\nWhere the CPU went (cores busy on average; the machine has %d):\n\n", cores
    print "| scenario | server | Postgres + Redis | wrk and the rest | server CPU per request |"
    print "|---|--:|--:|--:|--:|"
    for (i = 1; i <= n; i++) {
        slug = order[i]; k = p SUBSEP slug
        if (!(k in server_cores)) continue
        printf "| %s | %.2f | %.2f | %.2f | %.0f µs |\n", label[slug], server_cores[k], store_cores[k], other_cores[k], server_us[k]
    }
    known = p SUBSEP "forgot_known"; unknown = p SUBSEP "forgot_unknown"
    if ((known in seen) && (unknown in seen)) {
        printf "\nforgot-password, known vs unknown address: %.0f vs %.0f req/s, p50 %.2f vs %.2f ms, p99 %.2f vs %.2f ms.\n", \
            rps[known], rps[unknown], p50[known], p50[unknown], p99[known], p99[unknown]
    }
    printf "\nMemory of the server: peak (VmHWM) %s MB over the pass; resident (VmRSS) %s MB at the end, %s MB after start, %s MB after seeding.", hwm[p], rss[p], rss_started[p], rss_seeded[p]
    if (p in mix) printf " Mixed profile as sent: %s.", mix[p]
    printf " Server log (RUST_LOG=warn): %d lines; raw/%s-server-log-summary.txt counts them by message, raw/%s-server.log.gz has them all.", logged, p, p
    printf "\n\n"
}

END {
    if (chart) {
        # A header row naming each pass's column, then a row per scenario.
        line = "scenario"
        for (j = 1; j <= np; j++) line = line " \"" legend[pass_list[j]] "\""
        print line
        for (i = 1; i <= n; i++) {
            slug = order[i]; line = "\"" label[slug] "\""
            for (j = 1; j <= np; j++) {
                k = pass_list[j] SUBSEP slug
                line = line " " ((k in seen) ? rps[k] : "NaN")
            }
            print line
        }
        exit
    }
    print "## Ceilings\n"
    print "| ceiling | per second | how it is measured |"
    print "|---|--:|---|"
    printf "| RS256 signatures | %.0f | benches/ceilings.rs: `Tokens::pair` and two `Tokens::sign`, on %d threads, no HTTP |\n", ceiling["sign_per_s"], ceiling["threads"]
    printf "| argon2id verifications | %.1f | benches/ceilings.rs: `password::verify_now`, on %d threads |\n", ceiling["argon2_per_s"], ceiling["threads"]
    print "| HTTP | see each pass | the unknown route: routing, middleware and a JSON 404, no store |"
    print ""
    for (i = 1; i <= np; i++) table(pass_list[i])
    print "## Reading the tables\n"
    print "- **errors**: answers with another status than the scenario expects (200, 201 for register, 202 for forgot-password, 404 for the unknown route) plus socket errors and timeouts (10 s); any is a **FAIL**. The unknown route's 404s are told from other statuses in Lua, which costs wrk a few percent of its rate."
    print "- **ratio to ceiling**: req/s over the bound the scenario cannot beat on this machine. me and the healthchecker: the unknown route's req/s of the same pass. refresh: half the signatures per second (it signs two tokens). login and register: argon2 verifications per second (login verifies once, register hashes once at the same cost). mixed: 1 / (0.90/unknown + 0.08/(signs/2) + 0.02/argon2)."
    print "- The ceilings run on every core with nothing else; in the HTTP scenarios wrk takes part of the same cores, so 1.0 is out of reach."
    print "- **mixed SPA profile**: 90% me, 8% refresh, 2% login, drawn per request. Each refresh token is presented once and its successor used from then on, for refresh and for me; tokens travel as Bearer headers (wrk keeps one Set-Cookie per answer). Login answers' sessions are not reused. Its p99 is that of the logins (2% of requests, each waiting for argon2)."
    print "- **forgot-password, known vs unknown address**: the same request for a seeded user's address and for one without an account; the contract wants the same answer within a few milliseconds at the median, so that timing tells no one whether an address has an account. The known address gets 3 mails per 15 minutes (the rest are counted as limited), queued and sent in the background, the files into the pass's temporary MAIL_DIR. Each request counts against the client IP's failed-login counter, which the bench lifts out of the way."
    print "- **me under login flood**: me (Bearer) while a second wrk sends right-password logins on " flood " connections; the flood starts 1 s before and ends 1 s after."
    print "- **Where the CPU went**: CPU seconds from /proc over the scenario, divided by its length. The server's share per request is what bounds it once the machine is full: the signer costs 1/(signatures/s per core) per signature, argon2 1/(verifications/s per core) per login. The flood and the me run beside it overlap, so their rows share their CPU."
    print "- **RSS after**: the server's VmRSS after the scenario. **server log lines**: lines the server logged during it (seeding counts towards the first scenario)."
}
