# Bar chart of req/s per scenario, a bar per pass, for bench/run.sh:
#   gnuplot -e "datafile='chart.dat'; outfile='results.png'; cols=3; colors='#3060a0 #d08020';
#               top=1000; subtitle='...'" bench/chart.gp
# chart.dat (from report.awk): a header row naming the passes, then one row per scenario:
# "label" and each pass's req/s (NaN when absent); cols counts the columns.
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 1280,720 font "sans,11"
} else {
    set terminal png size 1280,720
}
set output outfile
set title "rs256-auth: requests per second by scenario (log scale)\n".subtitle
set ylabel "req/s"
set logscale y
# Room above the tallest bar (top: its req/s) for its label.
set yrange [1:top * 6]
set grid ytics mytics
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by 25 right nomirror
set key top right
set bmargin 6
n = cols - 1
set key autotitle columnheader
# Bar j of n in a cluster sits (j - (n + 1) / 2) / (n + 1) from the cluster's centre.
plot for [i=2:cols] datafile using i:xtic(1) lc rgb word(colors, i - 1), \
     for [i=2:cols] datafile using ($0 + (i - 1 - (n + 1) / 2.0) / (n + 1.0)):(column(i) * 1.1):(sprintf("%.0f", column(i))) \
         with labels rotate by 90 left font ",9" notitle
