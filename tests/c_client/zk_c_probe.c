/* A ZooKeeper C client (Apache's libzookeeper_mt, unchanged) driving a fixed script of
 * operations against whatever server the connect string names, printing one line per step:
 * "<step> rc=<ZooKeeper error code> <details>". tests/test_c_client.py runs it against zkref and
 * against Apache ZooKeeper 3.8 and compares the lines. Only fields that do not depend on
 * timing or on the server's zxid/epoch are printed (versions, counts, lengths, names).
 *
 * usage: zk_c_probe HOST:PORT[,HOST:PORT...] ROOT
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#define THREADED /* the synchronous API of libzookeeper_mt */
#include <zookeeper/zookeeper.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int connected = 0;
static int events[16];
static char event_paths[16][256];
static int n_events = 0;

static void global_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
    (void)zh;
    (void)ctx;
    pthread_mutex_lock(&mu);
    if (type == ZOO_SESSION_EVENT) {
        if (state == ZOO_CONNECTED_STATE) connected = 1;
    } else if (n_events < 16) {
        events[n_events] = type;
        snprintf(event_paths[n_events], sizeof event_paths[n_events], "%s", path ? path : "");
        n_events++;
    }
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* wait until `cond` holds (checked under the lock) or `seconds` pass; 1 if it holds */
static int wait_for(int (*cond)(void), int seconds) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += seconds;
    pthread_mutex_lock(&mu);
    int ok = cond();
    while (!ok) {
        if (pthread_cond_timedwait(&cv, &mu, &deadline) != 0) {
            ok = cond();
            break;
        }
        ok = cond();
    }
    pthread_mutex_unlock(&mu);
    return ok;
}

static int is_connected(void) { return connected; }
static int one_event(void) { return n_events >= 1; }
static int two_events(void) { return n_events >= 2; }

static const char *type_name(int t) {
    if (t == ZOO_CREATED_EVENT) return "created";
    if (t == ZOO_DELETED_EVENT) return "deleted";
    if (t == ZOO_CHANGED_EVENT) return "changed";
    if (t == ZOO_CHILD_EVENT) return "child";
    return "other";
}

static void print_stat(const char *step, int rc, const struct Stat *st, int64_t session) {
    if (rc != ZOK) {
        printf("%s rc=%d\n", step, rc);
        return;
    }
    printf("%s rc=0 version=%d cversion=%d aversion=%d numChildren=%d dataLength=%d ephemeral=%s"
           " ctime_le_mtime=%d\n",
           step, st->version, st->cversion, st->aversion, st->numChildren, st->dataLength,
           st->ephemeralOwner == 0 ? "no" : (st->ephemeralOwner == session ? "mine" : "other"),
           st->ctime <= st->mtime);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s HOSTS ROOT\n", argv[0]);
        return 2;
    }
    const char *root = argv[2];
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    zhandle_t *zh = zookeeper_init(argv[1], global_watcher, 10000, 0, NULL, 0);
    if (zh == NULL || !wait_for(is_connected, 30)) {
        fprintf(stderr, "could not connect to %s\n", argv[1]);
        return 1;
    }
    int64_t session = zoo_client_id(zh)->client_id;
    char path[512], buf[512], out[512];
    struct Stat st;
    int rc, len;

    /* create, read, versioned writes */
    rc = zoo_create(zh, root, "hello", 5, &ZOO_OPEN_ACL_UNSAFE, 0, out, sizeof out);
    printf("create-root rc=%d path=%s\n", rc, rc == ZOK ? out : "");
    rc = zoo_create(zh, root, "again", 5, &ZOO_OPEN_ACL_UNSAFE, 0, out, sizeof out);
    printf("create-root-again rc=%d\n", rc);
    len = sizeof buf;
    rc = zoo_get(zh, root, 0, buf, &len, &st);
    printf("get-root data=%.*s\n", len > 0 ? len : 0, buf);
    print_stat("get-root-stat", rc, &st, session);
    rc = zoo_set(zh, root, "world", 5, 0);
    printf("set-v0 rc=%d\n", rc);
    rc = zoo_set(zh, root, "stale", 5, 0);
    printf("set-v0-again rc=%d\n", rc);
    rc = zoo_set2(zh, root, "third", 5, -1, &st);
    print_stat("set-any", rc, &st, session);

    /* sequential children, ephemeral, children listing */
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/q-", root);
        rc = zoo_create(zh, path, "x", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_SEQUENCE, out, sizeof out);
        printf("create-seq rc=%d name=%s\n", rc, rc == ZOK ? out + strlen(root) + 1 : "");
    }
    snprintf(path, sizeof path, "%s/eph", root);
    rc = zoo_create(zh, path, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, out, sizeof out);
    printf("create-ephemeral rc=%d\n", rc);
    rc = zoo_exists(zh, path, 0, &st);
    print_stat("exists-ephemeral", rc, &st, session);
    snprintf(path, sizeof path, "%s/eph/child", root);
    rc = zoo_create(zh, path, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, out, sizeof out);
    printf("create-under-ephemeral rc=%d\n", rc);
    struct String_vector kids;
    rc = zoo_get_children2(zh, root, 0, &kids, &st);
    printf("children rc=%d count=%d\n", rc, rc == ZOK ? kids.count : -1);
    if (rc == ZOK) deallocate_String_vector(&kids);
    print_stat("children-stat", rc, &st, session);

    /* watches: exists on an absent node, then a data watch, fired by this session's writes */
    snprintf(path, sizeof path, "%s/w", root);
    rc = zoo_exists(zh, path, 1, &st);
    printf("exists-watch-absent rc=%d\n", rc);
    rc = zoo_create(zh, path, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, out, sizeof out);
    printf("create-watched rc=%d\n", rc);
    int got = wait_for(one_event, 10);
    printf("event-1 fired=%d type=%s path_ok=%d\n", got, got ? type_name(events[0]) : "-",
           got && strcmp(event_paths[0], path) == 0);
    len = sizeof buf;
    rc = zoo_get(zh, path, 1, buf, &len, &st);
    printf("get-watch rc=%d\n", rc);
    rc = zoo_delete(zh, path, -1);
    printf("delete-watched rc=%d\n", rc);
    got = wait_for(two_events, 10);
    printf("event-2 fired=%d type=%s path_ok=%d\n", got, got ? type_name(events[1]) : "-",
           got && strcmp(event_paths[1], path) == 0);

    /* errors */
    snprintf(path, sizeof path, "%s/missing/child", root);
    rc = zoo_create(zh, path, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, out, sizeof out);
    printf("create-no-parent rc=%d\n", rc);
    rc = zoo_delete(zh, root, -1);
    printf("delete-not-empty rc=%d\n", rc);
    rc = zoo_delete(zh, "/definitely/not/here", -1);
    printf("delete-missing rc=%d\n", rc);
    rc = zoo_create(zh, "bad-path", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, out, sizeof out);
    printf("create-bad-path rc=%d\n", rc);

    /* multi: all or nothing */
    zoo_op_t ops[2];
    zoo_op_result_t results[2];
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/m1", root);
    snprintf(p2, sizeof p2, "%s/m2", root);
    zoo_create_op_init(&ops[0], p1, "a", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    zoo_create_op_init(&ops[1], p2, "b", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    rc = zoo_multi(zh, 2, ops, results);
    printf("multi-ok rc=%d r0=%d r1=%d\n", rc, results[0].err, results[1].err);
    zoo_op_t bad[2];
    zoo_op_result_t bad_results[2];
    snprintf(path, sizeof path, "%s/m3", root);
    zoo_create_op_init(&bad[0], path, "c", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    zoo_check_op_init(&bad[1], p1, 7);
    rc = zoo_multi(zh, 2, bad, bad_results);
    printf("multi-fail rc=%d r0=%d r1=%d\n", rc, bad_results[0].err, bad_results[1].err);
    rc = zoo_exists(zh, path, 0, &st);
    printf("multi-fail-left-nothing rc=%d\n", rc);

    /* ACL: a read-only node */
    struct ACL read_only_acl[] = {{ZOO_PERM_READ, ZOO_ANYONE_ID_UNSAFE}};
    struct ACL_vector read_only = {1, read_only_acl};
    snprintf(path, sizeof path, "%s/ro", root);
    rc = zoo_create(zh, path, "r", 1, &read_only, 0, out, sizeof out);
    printf("create-read-only rc=%d\n", rc);
    rc = zoo_set(zh, path, "w", 1, -1);
    printf("set-read-only rc=%d\n", rc);
    struct ACL_vector acl;
    rc = zoo_get_acl(zh, path, &acl, &st);
    printf("get-acl rc=%d count=%d perms=%d scheme=%s id=%s\n", rc, rc == ZOK ? acl.count : -1,
           rc == ZOK ? acl.data[0].perms : -1, rc == ZOK ? acl.data[0].id.scheme : "",
           rc == ZOK ? acl.data[0].id.id : "");
    if (rc == ZOK) deallocate_ACL_vector(&acl);

    rc = zookeeper_close(zh);
    printf("close rc=%d\n", rc);
    return 0;
}
