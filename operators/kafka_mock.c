/*
 * kafka_mock.c - weir_kafka_mock_nodelay(): makes a librdkafka mock
 * cluster answer at once instead of after a delayed ACK.
 *
 * How it works
 *
 *   librdkafka's mock brokers (an in-process Kafka-protocol server used by
 *   tests, the demo and the embedded mode of weir-dedup) leave Nagle's
 *   algorithm on for their sockets. A response written in two pieces then
 *   waits for the client's delayed ACK, so every produce acknowledgement,
 *   fetch answer and transaction commit takes about 40 ms on loopback. A
 *   real Kafka broker sets TCP_NODELAY on its sockets.
 *
 *   The mock cluster runs in this process, so its sockets are file
 *   descriptors of ours. We walk /proc/self/fd (or the descriptor range
 *   when /proc is missing), and set TCP_NODELAY on every TCP socket whose
 *   local port is one of the cluster's bootstrap ports: the listeners
 *   (Linux copies the option to the connections they accept later) and
 *   the connections already accepted. Client sockets have ephemeral local
 *   ports and are not touched.
 *
 * Thread-safety: setsockopt() is safe while the mock's thread uses the
 *   sockets. A descriptor closed and reused during the walk is checked
 *   again by its local port before anything is set on it.
 */
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <weir.h>
#include <weir/kafka.h>

#define MAX_PORTS 64

/* Collects the ports of "host:port,host:port,...". */
static int parse_ports(const char *list, unsigned short *ports, int max)
{
    const char *p = list;
    int n = 0;

    while (*p != '\0') {
        const char *end = strchr(p, ',');
        const char *colon;
        char *stop;
        long port;

        if (end == NULL)
            end = p + strlen(p);
        colon = NULL;
        for (const char *q = p; q < end; q++)
            if (*q == ':')
                colon = q;
        if (colon == NULL || n == max)
            return -1;
        port = strtol(colon + 1, &stop, 10);
        if (stop != end || port <= 0 || port > 65535)
            return -1;
        ports[n++] = (unsigned short)port;
        p = *end == ',' ? end + 1 : end;
    }
    return n;
}

static int local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

/* Sets TCP_NODELAY on fd when it is a socket on one of the ports. */
static int tune(int fd, const unsigned short *ports, int nports)
{
    int port = local_port(fd);
    int one = 1;
    int i;

    if (port < 0)
        return 0;
    for (i = 0; i < nports; i++)
        if (port == ports[i])
            return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
                              sizeof(one)) == 0;
    return 0;
}

WEIR_EXTERN int weir_kafka_mock_nodelay(const char *bootstraps)
{
    unsigned short ports[MAX_PORTS];
    struct rlimit rl;
    struct dirent *de;
    DIR *dir;
    int nports;
    int changed = 0;
    int fd;

    if (bootstraps == NULL)
        return WEIR_EINVAL;
    nports = parse_ports(bootstraps, ports, MAX_PORTS);
    if (nports <= 0)
        return WEIR_EINVAL;
    dir = opendir("/proc/self/fd");
    if (dir != NULL) {
        while ((de = readdir(dir)) != NULL)
            if (de->d_name[0] >= '0' && de->d_name[0] <= '9' &&
                (fd = atoi(de->d_name)) != dirfd(dir))
                changed += tune(fd, ports, nports);
        closedir(dir);
        return changed;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur > 65536)
        rl.rlim_cur = 65536;
    for (fd = 0; fd < (int)rl.rlim_cur; fd++)
        changed += tune(fd, ports, nports);
    return changed;
}
