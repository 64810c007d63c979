# Plots of bench/run.sh's results: gnuplot -e "dir='build/bench'" bench/plot.gnuplot -> DIR/{exits,lab3,scaling}.{png,svg}
if (!exists("dir")) dir = "build/bench"
backends = system("cat " . dir . "/backends.txt")
nb = words(backends)

do for [fmt in "png svg"] {
    if (fmt eq "png") { set terminal pngcairo noenhanced size 1000,600 } else { set terminal svg noenhanced size 1000,600 }

    set output dir . "/exits." . fmt
    set title "Exit cost per kind (median of the guest's RDTSC per iteration)"
    set ylabel "ns per iteration (log)"
    set logscale y
    set style data histograms
    set style histogram clustered gap 1
    set style fill solid 0.8 border -1
    set xtics rotate by -30
    set key top left
    plot for [i=1:nb] dir . "/exits.dat" using (column(i+1)):xtic(1) title word(backends, i)
    unset logscale y

    set output dir . "/lab3." . fmt
    set title "Lab 3: dependent loads over 64 MiB, sequential vs random, 4 KiB vs 2 MiB guest pages (median per load)"
    set ylabel "ns per load"
    plot for [i=1:nb] dir . "/lab3.dat" using (column(i+1)):xtic(1) title word(backends, i)

    set output dir . "/scaling." . fmt
    set title "VM creation and a first full-memory touch vs guest RAM (mean)"
    set style data linespoints
    set xtics norotate
    set logscale xy
    set xlabel "guest RAM (MiB)"
    set ylabel "ms (log)"
    plot for [i=1:nb] dir . "/create.dat" using 1:(column(i+1)/1e6) title "create, " . word(backends, i), \
         for [i=1:nb] dir . "/touch.dat" using 1:(column(i+1)/1e6) title "touch, " . word(backends, i)
    unset logscale xy
    unset xlabel
    set style data histograms
}
